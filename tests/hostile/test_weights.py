"""Hostile weights files: corrupt safetensors layouts, zip and pickle bombs, hostile pickles beside good files.

safetensors cases follow safetensors' own validation (its `Metadata::validate`): the installed
`safetensors` package, when present, is asserted to refuse the same files.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest
from hostile_inputs import (
    MB,
    bounded,
    deflate_zeros,
    safetensors_bytes,
    tensor_pickle,
    write_weights,
    write_zip,
)

import loraguard
from loraguard.adapter.safetensors_file import MAX_HEADER_BYTES, read_safetensors_header
from loraguard.adapter.torch_pickle import MAX_PICKLE_BYTES, scan_torch_pickle, walk_pickle
from loraguard.adapter.values import tensor_stats_zip
from loraguard.errors import AdapterFormatError, InputLimitError

F32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
LAYOUTS = {
    # two tensors over the same bytes: WARN before, safetensors refuses
    "shared-bytes": ({"a": F32, "b": F32}, 8, "share bytes"),
    "hole": ({"a": {**F32, "data_offsets": [4, 12]}}, 12, "a hole in the data"),
    "string-offsets": ({"a": {**F32, "data_offsets": ["0", "8"]}}, 8, "must be two non-negative integers"),
    "float-offsets": ({"a": {**F32, "data_offsets": [0.0, 8]}}, 8, "must be two non-negative integers"),
    "bool-dims": ({"a": {**F32, "shape": [True, 2]}}, 8, "is not a non-negative integer"),
    "negative-dims": ({"a": {**F32, "shape": [-2]}}, 8, "is not a non-negative integer"),
    "million-dims": ({"a": {**F32, "shape": [1] * 1_000_000, "data_offsets": [0, 4]}}, 4, "1,000,000 dimensions"),
    "overflow": ({"a": {**F32, "shape": [2**40, 2**40, 0], "data_offsets": [0, 0]}}, 0, "overflows 64 bits"),
    "trailing-bytes": ({"a": F32}, 12, "belong to no tensor"),
    "truncated": ({"a": F32}, 4, "truncated"),
    "size-mismatch": ({"a": {**F32, "shape": [3]}}, 8, "needs 12 bytes"),
    "unknown-dtype": ({"a": {**F32, "dtype": "F7"}}, 8, "unknown dtype"),
    "half-byte": ({"a": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}, 2, "byte boundary"),
    "metadata-not-strings": ({"__metadata__": {"a": 1}, "a": F32}, 8, "__metadata__ must map strings"),
    "long-name": ({"x" * 5000: F32}, 8, "5,000-character name"),
    "deep": (b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", 0, "nested more than 64 levels"),
    "not-utf8": (b'{"\xff": 1}', 0, "not UTF-8"),
    "not-an-object": (b"[1, 2]", 0, "must be a JSON object"),
}


@pytest.mark.parametrize("case", LAYOUTS)
def test_corrupt_layouts_are_refused_as_safetensors_refuses_them(tmp_path: Path, case: str) -> None:
    header, size, says = LAYOUTS[case]
    path = write_weights(tmp_path, safetensors_bytes(header, b"\0" * size))
    with bounded(seconds=2, megabytes=150), pytest.raises(AdapterFormatError, match=says):
        read_safetensors_header(path)
    if case in ("long-name", "million-dims", "deep"):
        return  # loraguard's own caps; safetensors itself may accept these
    safetensors = pytest.importorskip("safetensors")
    with pytest.raises(Exception):  # noqa: B017 - safetensors raises its own SafetensorError
        with safetensors.safe_open(str(path), framework="numpy") as handle:
            for key in handle.keys():
                handle.get_tensor(key)


def test_layout_problem_is_an_unreadable_finding(tmp_path: Path, good: Path, base: Path) -> None:
    write_weights(good, safetensors_bytes({"a": F32, "b": F32}, b"\0" * 8))
    report = loraguard.check(good, base)
    assert report.exit_code() == 1 and any("share bytes" in f.message for f in report.findings if f.code == "LG101")


def test_valid_layout_in_any_order_is_read(tmp_path: Path) -> None:
    header = {"b": {**F32, "data_offsets": [8, 16]}, "a": F32, "__metadata__": {"format": "pt"}}
    tensors, metadata = read_safetensors_header(write_weights(tmp_path, safetensors_bytes(header, b"\0" * 16)))
    assert sorted(tensors) == ["a", "b"] and metadata == {"format": "pt"}


def test_header_beyond_the_cap_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "adapter_model.safetensors"
    with open(path, "wb") as handle:  # a sparse file: the header length claims 17 MiB, all of it "present"
        handle.write(struct.pack("<Q", MAX_HEADER_BYTES + MB) + b"{")
        handle.truncate(MAX_HEADER_BYTES + 2 * MB)
    with bounded(seconds=1, megabytes=20), pytest.raises(AdapterFormatError, match="not an adapter file"):
        read_safetensors_header(path)


@pytest.mark.parametrize("kind", ["loop", "fifo", "folder"])
def test_weights_that_are_not_files_are_findings(tmp_path: Path, good: Path, base: Path, kind: str) -> None:
    weights = good / "adapter_model.safetensors"
    weights.unlink()
    if kind == "loop":
        os.symlink(weights, weights)  # was: OSError traceback (ELOOP)
    elif kind == "fifo":
        os.mkfifo(weights)  # reading it would block forever
    else:
        weights.mkdir()
    with bounded(seconds=2, megabytes=100):
        report = loraguard.check(good, base)
    assert report.exit_code() == 1 and report.findings, kind


# -- zip archives and pickles ----------------------------------------------------------------------


def _bomb(tmp_path: Path, *, inflated: int, declared: int) -> Path:
    stream = deflate_zeros(inflated)
    return write_zip(tmp_path / "adapter_model.bin", {"archive/data.pkl": (stream, declared, 0)})


def test_data_pkl_inflating_to_2_gib_is_refused_early(tmp_path: Path) -> None:
    path = _bomb(tmp_path, inflated=2 << 30, declared=2 << 30)  # 2 MB on disk; was 4.3 GB of memory
    with bounded(seconds=2, megabytes=50), pytest.raises(AdapterFormatError, match="declares 2,147,483,648 bytes"):
        scan_torch_pickle(path)


def test_data_pkl_lying_about_its_size_stops_at_the_declared_size(tmp_path: Path) -> None:
    path = _bomb(tmp_path, inflated=2 << 30, declared=1000)  # inflation stops at 1,000 bytes: a bad CRC
    with bounded(seconds=2, megabytes=3 * MAX_PICKLE_BYTES / MB):
        with pytest.raises(AdapterFormatError, match="cannot read the zip archive"):
            scan_torch_pickle(path)


def test_storage_record_bomb_stops_the_value_scan(tmp_path: Path) -> None:
    pkl = tensor_pickle({"base_model.model.x.lora_A.weight": ("0", (2**28,))})  # claims 1 GiB of floats
    plain = zlib.compressobj(9, zlib.DEFLATED, -15)
    path = write_zip(
        tmp_path / "adapter_model.bin",
        {
            "archive/data.pkl": (plain.compress(pkl) + plain.flush(), len(pkl), zlib.crc32(pkl)),
            "archive/data/0": (deflate_zeros(1 << 30), 1 << 30, 0),
        },
    )
    scan = scan_torch_pickle(path)
    assert scan.unsafe_globals == () and scan.zip_prefix == "archive/"
    with bounded(seconds=3, megabytes=120), pytest.raises(AdapterFormatError, match="compression bomb"):
        tensor_stats_zip(path, scan.zip_prefix, scan.tensors.values())


@pytest.mark.parametrize(
    ("pickle", "says"),
    [
        (b"\x80\x02N" + b"r" + struct.pack("<I", 0xFFFFFFF0) + b".", "memo slot"),  # ~64 GB memo array
        (b"\x80\x04" + b"\x8f" * 1_000_000 + b".", "MiB of objects"),  # a million empty sets
        (b"\x80\x04\x8e" + struct.pack("<Q", 1 << 40) + b"x.", "past the end"),  # BINBYTES8 of 1 TiB
        (b"\x80\x02\xff.", "unknown opcode"),
        (b"\x80\x02N", "without a STOP"),
        (b"\x80\x02cos\nsystem" + b"x" * 100_000, "no end of line"),
    ],
)
def test_pickle_bombs_are_refused_before_unpickling(pickle: bytes, says: str) -> None:
    with bounded(seconds=2, megabytes=50), pytest.raises(InputLimitError, match=says):
        walk_pickle(pickle)


def test_pickle_bomb_file_is_a_finding(tmp_path: Path, good: Path, base: Path) -> None:
    (good / "adapter_model.safetensors").unlink()
    (good / "adapter_model.bin").write_bytes(b"\x80\x02N" + b"r" + struct.pack("<I", 0xFFFFFFF0) + b".")
    with bounded(seconds=2, megabytes=100):
        report = loraguard.check(good, base)
    assert any("memo slot" in f.message for f in report.findings if f.code == "LG101")


def test_hostile_bin_beside_a_good_safetensors_is_reported_never_run(good: Path, base: Path) -> None:
    from fault_cases.pickles import marker_path, write_zip_pickle_bin

    write_zip_pickle_bin(good)  # adapter_model.bin running `echo pwned > PWNED` if unpickled
    (good / "extra.pt").write_bytes((good / "adapter_model.bin").read_bytes())
    report = loraguard.check(good, base)  # was: PASS, no word about the pickle
    unsafe = [f for f in report.findings if f.code == "LG102"]
    assert sorted(Path(str(f.evidence["path"])).name for f in unsafe) == ["adapter_model.bin", "extra.pt"]
    assert all(f.evidence["globals"] == ["os.system"] for f in unsafe)
    assert report.adapter["format"] == "safetensors" and report.exit_code() == 1
    assert not marker_path(good).exists()


def test_training_args_bin_is_not_vetted_as_weights(good: Path, base: Path) -> None:
    from fault_cases.pickles import hostile_pickle

    (good / "training_args.bin").write_bytes(hostile_pickle("true"))  # the Trainer's pickle: evidence only
    assert not [f for f in loraguard.check(good, base).findings if f.code == "LG102"]


def test_legacy_pickle_with_a_hostile_later_pickle(tmp_path: Path) -> None:
    from fault_cases.pickles import hostile_pickle

    legacy = b"\x80\x02\x8a\x0a" + bytes(10) + b"." + b"\x80\x02K\x03." + hostile_pickle("true") + b"\0" * 64
    path = tmp_path / "adapter_model.bin"
    path.write_bytes(legacy)
    assert any(g.endswith("system") for g in scan_torch_pickle(path).unsafe_globals)


def test_reading_a_healthy_hand_built_checkpoint(tmp_path: Path) -> None:
    pkl = tensor_pickle({"base_model.model.x.lora_A.weight": ("0", (2, 3))})
    raw = struct.pack("<6f", 0, 1, 0, 0, float("nan"), 0)
    path = write_zip(
        tmp_path / "adapter_model.bin",
        {
            "archive/data.pkl": (_deflate(pkl), len(pkl), zlib.crc32(pkl)),
            "archive/data/0": (_deflate(raw), 24, zlib.crc32(raw)),
        },
    )
    scan = scan_torch_pickle(path)
    stats = tensor_stats_zip(path, "archive/", scan.tensors.values())
    assert scan.tensors["base_model.model.x.lora_A.weight"].shape == (2, 3)
    assert stats["base_model.model.x.lora_A.weight"].non_finite == 1


def _deflate(data: bytes) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    return comp.compress(data) + comp.flush()


@pytest.mark.parametrize("kind", ["fifo", "deep", "types"])
def test_hostile_files_beside_the_adapter(good: Path, base: Path, kind: str) -> None:
    """The model card, trainer_state.json and added_tokens.json are read bounded, never from a FIFO."""
    from hostile_inputs import nested_json

    for name in ("README.md", "trainer_state.json", "added_tokens.json"):
        path = good / name
        if kind == "fifo":
            os.mkfifo(path)  # reading one would block forever
        elif kind == "deep":
            path.write_text(nested_json(100_000))
        else:
            path.write_text('{"log_history": [{"eval_loss": "low"}, 3], "global_step": "x", "a": {"b": [1]}}')
    with bounded(seconds=3, megabytes=100):
        report = loraguard.check(good, base, engines=["vllm", "sglang"])
    assert report.exit_code() == 0 and "provenance" in report.categories()
