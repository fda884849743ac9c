"""Stream tensor values from an mmap (safetensors) or the zip records (torch .bin): zero, NaN/Inf, norm.

Only float tensors are inspected. Values are read in bounded chunks, so memory stays flat whatever
the adapter size. bf16 is widened to float32 chunk by chunk (numpy has no bf16).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from loraguard.adapter.tensors import FLOAT_DTYPES, TensorMeta, TensorStats

CHUNK_BYTES = 16 << 20
_NP = {"F64": np.float64, "F32": np.float32, "F16": np.float16}


def tensor_stats_safetensors(path: Path, tensors: Iterable[TensorMeta]) -> dict[str, TensorStats]:
    """Stats for every float tensor of a safetensors file, read through one read-only mmap."""
    metas = [t for t in tensors if t.dtype in FLOAT_DTYPES]
    if not metas:
        return {}
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    try:
        return {t.name: _stats(_chunks(raw[t.offset : t.offset + t.nbytes], t.dtype)) for t in metas}
    finally:
        del raw


def tensor_stats_zip(path: Path, prefix: str, tensors: Iterable[TensorMeta]) -> dict[str, TensorStats]:
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
            out[t.name] = _stats(_chunks(buf, t.dtype))
    return out


def _chunks(buf: np.ndarray, dtype: str) -> Iterator[np.ndarray]:
    step = CHUNK_BYTES
    usable = len(buf) - len(buf) % (8 if dtype == "F64" else 2)
    for start in range(0, usable, step):
        part = buf[start : min(start + step, usable)]
        if dtype == "BF16":
            widened = part.view(np.uint16).astype(np.uint32) << 16
            yield widened.view(np.float32)
        else:
            yield part.view(_NP[dtype])


def _stats(chunks: Iterator[np.ndarray]) -> TensorStats:
    all_zero, non_finite, sq = True, 0, 0.0
    for values in chunks:
        if values.size == 0:
            continue
        lo, hi = values.min(), values.max()
        if not (np.isfinite(lo) and np.isfinite(hi)):
            bad = ~np.isfinite(values)
            non_finite += int(bad.sum())
            finite = values[~bad]
            all_zero = all_zero and not finite.any()
            sq += float(np.dot(finite.astype(np.float64), finite.astype(np.float64)))
            continue
        if lo != 0 or hi != 0:
            all_zero = False
            v = values.astype(np.float32, copy=False)
            sq += float(np.dot(v, v))
    return TensorStats(all_zero=all_zero, non_finite=non_finite, norm=sq**0.5)
