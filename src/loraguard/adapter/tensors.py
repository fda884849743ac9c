"""Tensor metadata read from an adapter's weights file, without loading any weights."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

DTYPE_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "U16": 2,
    "U32": 4,
    "U64": 8,
    "BOOL": 1,
}
MAX_NAME_CHARS = 1024
"""Longest tensor name accepted from a weights file (PEFT's keys are under 200 characters)."""
DTYPE_BITS = {
    **{name: 8 * width for name, width in DTYPE_BYTES.items()},
    "F8_E8M0": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "C64": 64,
}
"""Bits per element of every dtype safetensors knows (its `Dtype::bitsize`), sub-byte ones included."""
FLOAT_DTYPES = frozenset({"F64", "F32", "F16", "BF16"})


@dataclass(frozen=True)
class TensorMeta:
    """One tensor of the adapter file: name, dtype, shape and where its bytes are.

    `offset` is absolute in the file for safetensors; for a torch `.bin` zip it is the offset
    inside the storage record named `storage`.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    offset: int
    nbytes: int
    storage: str | None = None

    @property
    def numel(self) -> int:
        return prod(self.shape) if self.shape else 1


@dataclass(frozen=True)
class TensorStats:
    """What the values of one tensor say: all zero, how many NaN/Inf, and its Frobenius norm
    (NaN unless norms were asked for)."""

    all_zero: bool
    non_finite: int
    norm: float
