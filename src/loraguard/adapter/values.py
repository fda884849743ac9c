"""Stream tensor values from an mmap (safetensors) or the zip records (torch .bin): zero, NaN/Inf, norm.

Only float tensors are inspected. Values are read in bounded chunks, so memory stays flat whatever
the adapter size. bf16 is widened to float32 chunk by chunk (numpy has no bf16).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from loraguard.adapter.tensors import FLOAT_DTYPES, TensorMeta, TensorStats

CHUNK_BYTES = 16 << 20
_NP = {"F64": np.float64, "F32": np.float32, "F16": np.float16}
# Per float dtype: unsigned view, mask clearing the sign bit, smallest masked value that is Inf/NaN.
_BITS = {
    "F64": (np.uint64, 0x7FFF_FFFF_FFFF_FFFF, 0x7FF0_0000_0000_0000),
    "F32": (np.uint32, 0x7FFF_FFFF, 0x7F80_0000),
    "F16": (np.uint16, 0x7FFF, 0x7C00),
    "BF16": (np.uint16, 0x7FFF, 0x7F80),
}


def tensor_stats_safetensors(
    path: Path, tensors: Iterable[TensorMeta], *, norms: bool = False
) -> dict[str, TensorStats]:
    """Stats for every float tensor of a safetensors file, read through one read-only mmap."""
    metas = [t for t in tensors if t.dtype in FLOAT_DTYPES]
    if not metas:
        return {}
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    try:
        return {t.name: _stats(raw[t.offset : t.offset + t.nbytes], t.dtype, norms) for t in metas}
    finally:
        del raw


def tensor_stats_zip(
    path: Path, prefix: str, tensors: Iterable[TensorMeta], *, norms: bool = False
) -> dict[str, TensorStats]:
    """Stats for float tensors of a torch zip checkpoint; storages are read, never unpickled."""
    metas = [t for t in tensors if t.dtype in FLOAT_DTYPES and t.storage is not None]
    out: dict[str, TensorStats] = {}
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        for t in metas:
            record = f"{prefix}data/{t.storage}"
            if record not in names:
                continue
            buf = np.frombuffer(zf.read(record), dtype=np.uint8)[t.offset : t.offset + t.nbytes]
            out[t.name] = _stats(buf, t.dtype, norms)
    return out


def _stats(buf: np.ndarray, dtype: str, norms: bool) -> TensorStats:
    """One pass over the bits: zero iff every |x| bit pattern is 0; Inf/NaN iff the exponent is all ones."""
    uint, mask, inf_bits = _BITS[dtype]
    width = np.dtype(uint).itemsize
    step = CHUNK_BYTES - CHUNK_BYTES % width
    usable = len(buf) - len(buf) % width
    all_zero, non_finite, sq = True, 0, 0.0
    for start in range(0, usable, step):
        bits = buf[start : min(start + step, usable)].view(uint) & uint(mask)
        if bits.size == 0:
            continue
        top = int(bits.max())
        if top >= inf_bits:
            non_finite += int(np.count_nonzero(bits >= inf_bits))
        all_zero = all_zero and top == 0
        if norms and top:
            values = _floats(buf[start : min(start + step, usable)], dtype)
            finite = values[np.isfinite(values)]
            sq += float(np.dot(finite, finite))
    return TensorStats(all_zero=all_zero, non_finite=non_finite, norm=sq**0.5 if norms else float("nan"))


def _floats(part: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "BF16":
        return ((part.view(np.uint16).astype(np.uint32)) << 16).view(np.float32).astype(np.float64)
    return part.view(_NP[dtype]).astype(np.float64)
