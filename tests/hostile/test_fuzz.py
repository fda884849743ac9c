"""Property-based fuzzing of the three readers of untrusted bytes: the safetensors header reader, the pickle
inspector and the config reader. Whatever the input: a result or a `LoraguardError`, nothing else, within
time. Bounded example counts, derandomized (the same examples on every run) and no example database.
"""

from __future__ import annotations

import json
import math
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="the dev extra's hypothesis runs the fuzzing")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from loraguard.adapter.config import AdapterConfig, config_problems, read_adapter_config  # noqa: E402
from loraguard.adapter.safetensors_file import read_safetensors_header  # noqa: E402
from loraguard.adapter.torch_pickle import scan_torch_pickle  # noqa: E402
from loraguard.checks.targets import PatternKeys, matches_target  # noqa: E402
from loraguard.errors import ConfigPatternError, LoraguardError  # noqa: E402

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MODULES = ["model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj", "lm_head", "model.embed_tokens"]

json_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


_WORK = tempfile.TemporaryDirectory(prefix="loraguard-fuzz-")  # removed when the module is collected


def _tmp(name: str, content: bytes) -> Path:
    """`content` in file `name` of the fuzz work folder (each example overwrites the last one's)."""
    path = Path(_WORK.name) / name
    path.write_bytes(content)
    return path


# -- safetensors ---------------------------------------------------------------------------------------

dims = st.lists(st.integers(0, 6) | st.sampled_from([-1, 2**64, 1.5, "2", True, None]), max_size=4)
offsets = st.lists(st.integers(0, 96) | st.sampled_from([-1, 2**64, "8", 8.0, None]), min_size=0, max_size=3)
entry = st.fixed_dictionaries(
    {},
    optional={
        "dtype": st.sampled_from(["F32", "F16", "BF16", "I64", "U8", "F4", "C64", "F7", 5]),
        "shape": dims,
        "data_offsets": offsets,
        "extra": json_scalars,
    },
)
headers = st.dictionaries(
    st.text(min_size=1, max_size=10) | st.just("__metadata__"),
    entry | json_values,
    max_size=5,
)


@FUZZ
@given(header=headers, data_size=st.integers(0, 96), claimed=st.none() | st.integers(0, 2**64 - 1))
def test_safetensors_header_reader(header: dict[str, Any], data_size: int, claimed: int | None) -> None:
    text = json.dumps(header).encode()
    raw = struct.pack("<Q", len(text) if claimed is None else claimed) + text + b"\0" * data_size
    path = _tmp("adapter_model.safetensors", raw)
    try:
        tensors, metadata = read_safetensors_header(path)
    except LoraguardError:
        return
    # Accepted: the tensors tile the data exactly, as safetensors requires.
    spans = sorted((t.offset, t.offset + t.nbytes) for t in tensors.values())
    start = 8 + len(text)
    for begin, end in spans:
        assert begin == start
        start = end
    assert start == len(raw) and all(isinstance(v, str) for v in metadata.values())


@FUZZ
@given(raw=st.binary(max_size=400))
def test_safetensors_reader_on_random_bytes(raw: bytes) -> None:
    try:
        read_safetensors_header(_tmp("adapter_model.safetensors", raw))
    except LoraguardError:
        pass


# -- pickles -------------------------------------------------------------------------------------------

FRAGMENTS = [
    b"}", b"]", b")", b"(", b"t", b"N", b"\x88", b"\x89", b"K\x01", b"J\x00\x00\x00\x01", b"s", b"u", b"a",
    b"e", b"R", b"b", b"0", b"1", b"2", b"\x85", b"\x86", b"\x87", b"q\x00", b"h\x00", b"r\x05\x00\x00\x00",
    b"j\x00\x00\x00\x00", b"X\x03\x00\x00\x00abc", b"\x8c\x01a", b"U\x01a", b"Q", b"cos\nsystem\n",
    b"ctorch._utils\n_rebuild_tensor_v2\n", b"ctorch\nFloatStorage\n", b"ccollections\nOrderedDict\n",
    b"\x93", b"\x8f", b"\x90", b"\x91", b"\x81", b"\x92", b"o", b"i", b"\x8e\x00\x00\x00\x00\x00\x00\x00\x10",
    b"\x95\x05\x00\x00\x00\x00\x00\x00\x00", b"d", b"l", b"p3\n", b"g0\n", b"I12\n", b"F1.5\n", b"\x94",
]  # fmt: skip
pickles = st.builds(
    lambda proto, parts, stop: proto + b"".join(parts) + (b"." if stop else b""),
    st.sampled_from([b"\x80\x02", b"\x80\x04", b""]),
    st.lists(st.sampled_from(FRAGMENTS), max_size=30),
    st.booleans(),
)


def _zip(data_pkl: bytes) -> bytes:
    path = _tmp("z.bin", b"")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/data/0", b"\0" * 16)
    return path.read_bytes()


@FUZZ
@given(pkl=pickles, zipped=st.booleans())
def test_pickle_inspector_on_opcode_soup(pkl: bytes, zipped: bool) -> None:
    path = _tmp("adapter_model.bin", _zip(pkl) if zipped else pkl)
    marker = path.parent / "PWNED"
    try:
        scan = scan_torch_pickle(path)
    except LoraguardError:
        return
    finally:
        assert not marker.exists()
    assert all(isinstance(g, str) for g in scan.unsafe_globals)
    if b"cos\nsystem\n" in pkl and scan.unsafe_globals:
        assert "os.system" in scan.unsafe_globals


@FUZZ
@given(raw=st.binary(max_size=400))
def test_pickle_inspector_on_random_bytes(raw: bytes) -> None:
    try:
        scan_torch_pickle(_tmp("adapter_model.bin", raw))
    except LoraguardError:
        pass


# -- adapter_config.json -------------------------------------------------------------------------------

FIELDS = [
    "r", "lora_alpha", "target_modules", "exclude_modules", "modules_to_save", "rank_pattern", "alpha_pattern",
    "layers_to_transform", "layers_pattern", "peft_type", "task_type", "bias", "lora_dropout",
    "base_model_name_or_path", "use_dora",
]  # fmt: skip
patterns = st.sampled_from(["q_proj", ".*", "(", "[a-", r"(a|aa)+$", r".*\.(q|v)_proj", "layers", "a{2,3}", ""])
field_values = (
    json_values | patterns | st.lists(patterns, max_size=3) | st.dictionaries(patterns, json_scalars, max_size=3)
)
configs = st.dictionaries(st.sampled_from(FIELDS), field_values, max_size=6)


@FUZZ
@given(raw=configs)
def test_config_reader_and_matching(raw: dict[str, Any]) -> None:
    text = json.dumps(raw, allow_nan=True)
    path = _tmp("adapter_config.json", text.encode())
    config = read_adapter_config(path)
    assert isinstance(config, AdapterConfig)
    for problem in config_problems(config):
        assert problem.field and problem.message
    for module in MODULES:
        try:
            assert isinstance(matches_target(config, module), bool)
            PatternKeys(config.rank_pattern, config.patterns).key_for(module)
        except ConfigPatternError:
            pass
    assert config.r is None or isinstance(config.r, int)
    assert config.lora_alpha is None or math.isfinite(config.lora_alpha)


@FUZZ
@given(raw=st.binary(max_size=300))
def test_config_reader_on_random_bytes(raw: bytes) -> None:
    try:
        read_adapter_config(_tmp("adapter_config.json", raw))
    except LoraguardError:
        pass


@settings(FUZZ, max_examples=60)
@given(raw=configs)
def test_check_on_fuzzed_configs(raw: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> None:
    """The whole static check: a report (never an exception) for any config, against a real base."""
    import shutil

    from hostile_inputs import good_adapter, tiny_base

    import loraguard

    root = tmp_path_factory.getbasetemp() / "fuzz-check"
    base, good = tiny_base(root), good_adapter(root)
    adapter = Path(_WORK.name) / "adapter"
    shutil.rmtree(adapter, ignore_errors=True)
    shutil.copytree(good, adapter)
    (adapter / "adapter_config.json").write_text(
        json.dumps({**json.loads((good / "adapter_config.json").read_text()), **raw})
    )
    report = loraguard.check(adapter, base)
    assert report.verdict is not None and report.timing_ms < 5_000
