"""Reading adapters byte by byte: corrupt headers, pickles, values; nothing executes, nothing crashes."""

from __future__ import annotations

import json
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from loraguard.adapter.reader import read_adapter
from loraguard.adapter.torch_pickle import scan_torch_pickle
from loraguard.checks.checker import check
from loraguard.errors import AdapterFormatError


def _write_safetensors(path: Path, tensors: dict[str, np.ndarray], header_extra: bytes = b"") -> None:
    header, offset, blobs = {}, 0, []
    for name, arr in tensors.items():
        raw = arr.astype(np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header).encode() + header_extra
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def _adapter(folder: Path, tensors: dict[str, np.ndarray]) -> Path:
    folder.mkdir()
    (folder / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "r": 2, "target_modules": ["q_proj"], "base_model_name_or_path": "x"})
    )
    _write_safetensors(folder / "adapter_model.safetensors", tensors)
    return folder


def test_values_are_streamed_zero_nan_and_norm(tmp_path: Path) -> None:
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    b = np.zeros((4, 2), dtype=np.float32)
    b_nan = b.copy()
    b_nan[1, 1] = np.nan
    folder = _adapter(
        tmp_path / "ad",
        {
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": a,
            "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": b,
            "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight": a,
            "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight": b_nan,
        },
    )
    data = read_adapter(folder)
    stats = data.stats
    assert stats is not None
    assert stats["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"].all_zero
    assert stats["base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight"].non_finite == 1
    normed = read_adapter(folder, norms=True).stats
    assert normed is not None
    assert normed["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"].norm == pytest.approx(
        float(np.linalg.norm(a)), rel=1e-6
    )


def test_header_json_corruption_is_unreadable_not_a_crash(tmp_path: Path) -> None:
    folder = _adapter(tmp_path / "ad", {"a.lora_A.weight": np.ones((2, 2))})
    path = folder / "adapter_model.safetensors"
    raw = bytearray(path.read_bytes())
    raw[8] = ord("[")  # header must start with '{'
    path.write_bytes(bytes(raw))
    report = check(folder)
    assert "unreadable" in report.categories()
    assert str(path) in report.findings[0].message


def test_tiny_file_is_unreadable(tmp_path: Path) -> None:
    folder = _adapter(tmp_path / "ad", {"a.lora_A.weight": np.ones((2, 2))})
    (folder / "adapter_model.safetensors").write_bytes(b"\x01\x02")
    report = check(folder)
    assert report.verdict.value == "fail" and "unreadable" in report.categories()


def test_missing_path_is_an_unreadable_finding(tmp_path: Path) -> None:
    report = check(tmp_path / "nope")
    assert report.categories() == {"unreadable"}
    assert "no such file or folder" in report.findings[0].message


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_legacy_and_zip_pickles_are_scanned_without_running(tmp_path: Path) -> None:
    raw = tmp_path / "evil.bin"
    raw.write_bytes(pickle.dumps({"w": _Evil()}))
    scan = scan_torch_pickle(raw)
    assert any(g.endswith("system") for g in scan.unsafe_globals)
    zipped = tmp_path / "evil_zip.bin"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"w": _Evil()}))
    assert any(g.endswith("system") for g in scan_torch_pickle(zipped).unsafe_globals)


def test_torch_bin_tensors_are_read_without_torch_load(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "adapter_model.bin"
    sd = {"base_model.model.x.lora_A.weight": torch.ones(2, 3), "base_model.model.x.lora_B.weight": torch.zeros(4, 2)}
    torch.save(sd, path)
    scan = scan_torch_pickle(path)
    assert scan.unsafe_globals == ()
    assert {k: v.shape for k, v in scan.tensors.items()} == {
        "base_model.model.x.lora_A.weight": (2, 3),
        "base_model.model.x.lora_B.weight": (4, 2),
    }


@pytest.mark.slow
def test_header_parser_agrees_with_huggingface_hub(built_cases) -> None:
    from huggingface_hub import parse_local_safetensors_file_metadata

    from loraguard.adapter.safetensors_file import read_safetensors_header

    files = [p for item in built_cases.values() for p in item.adapter.glob("*.safetensors")]
    readable = 0
    for path in files:
        try:
            theirs = parse_local_safetensors_file_metadata(path)
        except Exception:
            continue  # a corrupt fault case; ours must reject it too (test_fault_cases covers how)
        try:
            ours, metadata = read_safetensors_header(path)
        except AdapterFormatError as exc:  # the Hub's parser reads only the header; we also check the data
            assert "truncated" in str(exc)
            continue
        readable += 1
        assert metadata == dict(theirs.metadata or {})
        assert {k: (t.dtype, t.shape) for k, t in ours.items()} == {
            k: (t.dtype, tuple(t.shape)) for k, t in theirs.tensors.items()
        }
    assert readable >= 25
