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
from loraguard.errors import AdapterFormatError, LoraguardError

CHUNK_BYTES = 16 << 20
MIN_INFLATE_BYTES = 64 << 20
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


def inflate_limit(path: Path) -> int:
    """Most bytes the value scan inflates from a zip checkpoint: twice its size, at least 64 MiB. torch
    stores records uncompressed, so a real checkpoint never comes near; a compression bomb stops there."""
    return max(2 * path.stat().st_size, MIN_INFLATE_BYTES)


def tensor_stats_zip(
    path: Path, prefix: str, tensors: Iterable[TensorMeta], *, norms: bool = False
) -> dict[str, TensorStats]:
    """Stats for float tensors of a torch zip checkpoint; storages are streamed, never unpickled.

    Reading stops with `AdapterFormatError` once more than `inflate_limit(path)` bytes were inflated."""
    metas = [t for t in tensors if t.dtype in FLOAT_DTYPES and t.storage is not None]
    out: dict[str, TensorStats] = {}
    budget = inflate_limit(path)
    try:
        with zipfile.ZipFile(path) as zf:
            records = {info.filename: info for info in zf.infolist()}
            for t in metas:
                info = records.get(f"{prefix}data/{t.storage}")
                if info is None:
                    continue
                stats, used = _record_stats(zf, info, t, norms, budget)
                budget -= used
                if budget < 0:
                    raise AdapterFormatError(
                        f"{path}: its storage records inflate to more than {inflate_limit(path):,} bytes: a "
                        "compression bomb, not a torch checkpoint (torch stores records uncompressed).",
                        path=path,
                    )
                out[t.name] = stats
    except LoraguardError:
        raise
    except Exception as exc:  # BadZipFile, zlib.error, OSError...
        raise AdapterFormatError(f"{path}: cannot read the zip archive ({exc}). Re-download it.", path=path) from None
    return out


def _record_stats(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, t: TensorMeta, norms: bool, budget: int
) -> tuple[TensorStats, int]:
    """Stats of tensor `t`'s bytes in record `info`, read in chunks; (stats, bytes inflated)."""
    acc = _Accumulator(t.dtype, norms)
    used = 0
    with zf.open(info) as record:
        skip = t.offset
        while skip > 0 and used <= budget:
            got = len(record.read(min(skip, CHUNK_BYTES)))
            if not got:
                break
            skip -= got
            used += got
        left = t.nbytes
        while left > 0 and used <= budget:
            chunk = record.read(min(left, CHUNK_BYTES))
            if not chunk:
                break
            used += len(chunk)
            left -= len(chunk)
            acc.add(np.frombuffer(chunk, dtype=np.uint8))
    return acc.result(), used


def _stats(buf: np.ndarray, dtype: str, norms: bool) -> TensorStats:
    """One pass over the bits: zero iff every |x| bit pattern is 0; Inf/NaN iff the exponent is all ones."""
    acc = _Accumulator(dtype, norms)
    step = CHUNK_BYTES - CHUNK_BYTES % acc.width
    for start in range(0, len(buf), step):
        acc.add(buf[start : start + step])
    return acc.result()


class _Accumulator:
    """Zero / NaN-Inf / squared-norm over a tensor's bytes fed in chunks (any chunk boundaries)."""

    def __init__(self, dtype: str, norms: bool) -> None:
        self.dtype, self.norms = dtype, norms
        self.uint, self.mask, self.inf_bits = _BITS[dtype]
        self.width = np.dtype(self.uint).itemsize
        self.carry = b""
        self.all_zero, self.non_finite, self.sq = True, 0, 0.0

    def add(self, part: np.ndarray) -> None:
        if self.carry:  # bytes of an element split across chunks
            part = np.concatenate([np.frombuffer(self.carry, dtype=np.uint8), part])
            self.carry = b""
        usable = len(part) - len(part) % self.width
        if usable < len(part):
            self.carry = part[usable:].tobytes()
        if not usable:
            return
        raw = part[:usable]
        bits = raw.view(self.uint) & self.uint(self.mask)
        top = int(bits.max())
        if top >= self.inf_bits:
            self.non_finite += int(np.count_nonzero(bits >= self.inf_bits))
        self.all_zero = self.all_zero and top == 0
        if self.norms and top:
            values = _floats(raw, self.dtype)
            finite = values[np.isfinite(values)]
            self.sq += float(np.dot(finite, finite))

    def result(self) -> TensorStats:
        norm = self.sq**0.5 if self.norms else float("nan")
        return TensorStats(all_zero=self.all_zero, non_finite=self.non_finite, norm=norm)


def _floats(part: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "BF16":
        return ((part.view(np.uint16).astype(np.uint32)) << 16).view(np.float32).astype(np.float64)
    return part.view(_NP[dtype]).astype(np.float64)
