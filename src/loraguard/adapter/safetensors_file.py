"""Read a `.safetensors` header and validate it against the file, with the standard library only.

The format (safetensors' README and `docs/safetensors.schema.json`): an 8-byte little-endian
header length, a JSON object starting with `{` mapping tensor names to `dtype`, `shape` and
`data_offsets` (relative to the end of the header), and an optional `__metadata__` of strings.
Modelled on huggingface_hub's `parse_local_safetensors_file_metadata`, without importing the
Hub client (~0.1 s) on the static check's path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from loraguard.adapter.tensors import DTYPE_BYTES, TensorMeta
from loraguard.errors import AdapterFormatError

MAX_HEADER_BYTES = 100_000_000  # safetensors' own MAX_HEADER_SIZE


def read_safetensors_header(path: Path) -> tuple[dict[str, TensorMeta], dict[str, str]]:
    """Tensors (with absolute byte offsets) and `__metadata__` of a safetensors file.

    Raises `AdapterFormatError` naming the file for a file shorter than its header says, a header
    larger than the file, invalid JSON, unknown dtypes or offsets that do not match shapes.
    """
    size = os.path.getsize(path)
    if size < 8:
        raise AdapterFormatError(
            f"{path}: {size} bytes, too short to be safetensors (needs an 8-byte header length). "
            "Re-download or re-save the adapter.",
            path=path,
        )
    with open(path, "rb") as fh:
        header_len = int.from_bytes(fh.read(8), "little")
        if header_len > size - 8 or header_len > MAX_HEADER_BYTES:
            raise AdapterFormatError(
                f"{path}: header claims {header_len} bytes but the file has {size - 8} after the length "
                "field: truncated or not a safetensors file. Re-download or re-save the adapter.",
                path=path,
            )
        raw = fh.read(header_len)
    header = _parse_header(raw, path)
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise AdapterFormatError(f"{path}: __metadata__ must map strings to strings.", path=path)
    data_start = 8 + header_len
    tensors = {name: _tensor(path, name, info, data_start, size) for name, info in header.items()}
    return tensors, dict(metadata)


def _parse_header(raw: bytes, path: Path) -> dict[str, Any]:
    if not raw.startswith(b"{"):
        raise AdapterFormatError(
            f"{path}: corrupt safetensors header (it must be a JSON object starting "
            "with '{'). Re-download or re-save the adapter.",
            path=path,
        )
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterFormatError(
            f"{path}: corrupt safetensors header ({exc}). Re-download or re-save the adapter.", path=path
        ) from exc
    if not isinstance(header, dict):
        raise AdapterFormatError(f"{path}: corrupt safetensors header (not a JSON object).", path=path)
    return header


def _tensor(path: Path, name: str, info: Any, data_start: int, size: int) -> TensorMeta:
    try:
        dtype = str(info["dtype"])
        shape = tuple(int(d) for d in info["shape"])
        begin, end = (int(x) for x in info["data_offsets"])
    except (KeyError, TypeError, ValueError) as exc:
        raise AdapterFormatError(
            f"{path}: tensor {name!r} has an invalid entry ({exc!r}): corrupt header.", path=path
        ) from exc
    width = DTYPE_BYTES.get(dtype)
    if width is None:
        raise AdapterFormatError(f"{path}: tensor {name!r} has unknown dtype {dtype!r}.", path=path)
    expected = width * _numel(shape)
    if end - begin != expected or begin < 0 or any(d < 0 for d in shape):
        raise AdapterFormatError(
            f"{path}: tensor {name!r} spans bytes [{begin}, {end}) but shape {list(shape)} of "
            f"{dtype} needs {expected} bytes: corrupt header.",
            path=path,
        )
    if data_start + end > size:
        raise AdapterFormatError(
            f"{path}: tensor {name!r} ends at byte {data_start + end} but the file has {size} bytes: "
            "the file is truncated. Re-download or re-save the adapter.",
            path=path,
        )
    return TensorMeta(name, dtype, shape, data_start + begin, end - begin)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
