"""Read a `.safetensors` header (via huggingface_hub's parser) and validate it against the file."""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import parse_local_safetensors_file_metadata
from huggingface_hub.errors import SafetensorsParsingError

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
            "Re-download or re-save the adapter.", path=path)
    with open(path, "rb") as fh:
        header_len = int.from_bytes(fh.read(8), "little")
    if header_len > size - 8 or header_len > MAX_HEADER_BYTES:
        raise AdapterFormatError(
            f"{path}: header claims {header_len} bytes but the file has {size - 8} after the length "
            "field: truncated or not a safetensors file. Re-download or re-save the adapter.", path=path)
    try:
        meta = parse_local_safetensors_file_metadata(path)
    except (SafetensorsParsingError, ValueError, KeyError, TypeError) as exc:
        raise AdapterFormatError(
            f"{path}: corrupt safetensors header ({exc}). Re-download or re-save the adapter.",
            path=path) from exc
    data_start = 8 + header_len
    tensors: dict[str, TensorMeta] = {}
    for name, info in meta.tensors.items():
        begin, end = (int(x) for x in info.data_offsets)
        shape = tuple(int(d) for d in info.shape)
        width = DTYPE_BYTES.get(str(info.dtype))
        if width is None:
            raise AdapterFormatError(f"{path}: tensor {name!r} has unknown dtype {info.dtype!r}.", path=path)
        expected = width * (_numel(shape))
        if end - begin != expected or begin < 0:
            raise AdapterFormatError(
                f"{path}: tensor {name!r} spans bytes [{begin}, {end}) but shape {list(shape)} of "
                f"{info.dtype} needs {expected} bytes: corrupt header.", path=path)
        if data_start + end > size:
            raise AdapterFormatError(
                f"{path}: tensor {name!r} ends at byte {data_start + end} but the file has {size} bytes: "
                "the file is truncated. Re-download or re-save the adapter.", path=path)
        tensors[name] = TensorMeta(name, str(info.dtype), shape, data_start + begin, end - begin)
    return tensors, dict(meta.metadata or {})


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
