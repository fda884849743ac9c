"""Read a `.safetensors` header and validate it against the file as safetensors itself does, with the
standard library and NumPy only.

The format (safetensors' README, `docs/safetensors.schema.json` and `Metadata::validate` in its Rust
crate): an 8-byte little-endian header length N, then N bytes of UTF-8 JSON starting with `{` that map
tensor names to `dtype`, `shape` (non-negative integers) and `data_offsets` (two non-negative integers,
relative to the end of the header), with an optional `__metadata__` of strings to strings, then the
data. safetensors refuses a file whose tensors, sorted by offset, do not tile the data exactly: the
first starts at 0, each starts where the previous ends (no hole, no shared bytes), each spans exactly
its shape × dtype size (computed without overflowing 64 bits), and the last ends at the end of the file.
Offsets or dimensions given as strings, floats or booleans are refused too. So is every such file here.

Beyond safetensors' rules, for bounded time and memory on untrusted files: a header above
`MAX_HEADER_BYTES`, JSON nested deeper than `fileio.MAX_JSON_DEPTH`, a shape of more than `MAX_DIMS`
dimensions and a tensor name longer than `MAX_NAME_CHARS` are refused with their own messages.
Modelled on huggingface_hub's `parse_local_safetensors_file_metadata`, without importing the Hub
client (~0.1 s) on the static check's path.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from loraguard.adapter.tensors import DTYPE_BITS, MAX_NAME_CHARS, TensorMeta
from loraguard.errors import AdapterFormatError, InputLimitError
from loraguard.fileio import MAX_JSON_DEPTH, loads_bounded

MAX_HEADER_BYTES = 16 << 20
"""Largest header read (16 MiB). safetensors allows 100 MB; a LoRA's header is kilobytes, and one with
a LoRA on every expert of a 256-expert model about 15 MB. Parsed JSON takes several times its size."""
MAX_DIMS = 64
"""Most dimensions a tensor may have (NumPy's limit; a LoRA tensor has 1, 2 or 4)."""
_USIZE = (1 << 64) - 1
_REDO = "Re-download or re-save the adapter."


def read_safetensors_header(path: Path) -> tuple[dict[str, TensorMeta], dict[str, str]]:
    """Tensors (with absolute byte offsets) and `__metadata__` of a safetensors file.

    Raises `AdapterFormatError` naming the file for everything safetensors refuses (see the module
    docstring) and for the limits above; an unreadable file (a symlink loop, no permission) too.
    """
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise AdapterFormatError(f"{path}: not a regular file (a folder, FIFO or device). {_REDO}", path=path)
        size = info.st_size
        if size < 8:
            raise AdapterFormatError(
                f"{path}: {size} bytes, too short to be safetensors (needs an 8-byte header length). {_REDO}",
                path=path,
            )
        with open(path, "rb") as fh:
            header_len = int.from_bytes(fh.read(8), "little")
            if header_len > size - 8:
                raise AdapterFormatError(
                    f"{path}: header claims {header_len:,} bytes but the file has {size - 8:,} after the length "
                    f"field: truncated or not a safetensors file. {_REDO}",
                    path=path,
                )
            if header_len > MAX_HEADER_BYTES:
                raise AdapterFormatError(
                    f"{path}: a {header_len:,}-byte header, more than the {MAX_HEADER_BYTES:,} bytes loraguard "
                    "reads (a LoRA's header is kilobytes): not an adapter file.",
                    path=path,
                )
            raw = fh.read(header_len)
    except OSError as exc:
        raise AdapterFormatError(f"{path}: cannot read ({exc.strerror or exc}).", path=path) from None
    if len(raw) < header_len:
        raise AdapterFormatError(f"{path}: the file shrank while it was read. {_REDO}", path=path)
    header = _parse_header(raw, path)
    metadata = header.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise AdapterFormatError(f"{path}: __metadata__ must map strings to strings. {_REDO}", path=path)
    data_start = 8 + header_len
    entries = [_entry(path, name, value) for name, value in header.items()]
    _check_layout(path, entries, size - data_start)
    tensors = {
        name: TensorMeta(name, dtype, shape, data_start + begin, end - begin)
        for name, dtype, shape, begin, end in entries
    }
    return tensors, dict(metadata)


def _parse_header(raw: bytes, path: Path) -> dict[str, Any]:
    if not raw.startswith(b"{"):
        raise AdapterFormatError(
            f"{path}: corrupt safetensors header (it must be a JSON object starting with '{{'). {_REDO}", path=path
        )
    try:
        raw.decode("utf-8")
        header = loads_bounded(raw, max_depth=MAX_JSON_DEPTH)
    except UnicodeDecodeError as exc:
        raise AdapterFormatError(
            f"{path}: corrupt safetensors header (not UTF-8 at byte {exc.start}). {_REDO}", path=path
        ) from None
    except InputLimitError as exc:
        raise AdapterFormatError(f"{path}: corrupt safetensors header ({exc}). {_REDO}", path=path) from None
    if not isinstance(header, dict):
        raise AdapterFormatError(f"{path}: corrupt safetensors header (not a JSON object). {_REDO}", path=path)
    return header


Entry = tuple[str, str, tuple[int, ...], int, int]
"""(name, dtype, shape, begin, end) with offsets relative to the start of the data."""


def _entry(path: Path, name: str, info: Any) -> Entry:
    what = f"{path}: tensor {_short(name)}"
    if len(name) > MAX_NAME_CHARS:
        raise AdapterFormatError(
            f"{what} has a {len(name):,}-character name, more than the {MAX_NAME_CHARS:,} loraguard accepts "
            "(PEFT's keys are under 200): not an adapter file.",
            path=path,
        )
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
        raise AdapterFormatError(
            f"{what} needs an object with dtype, shape and data_offsets: corrupt header. {_REDO}", path=path
        )
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise AdapterFormatError(f"{what} has unknown dtype {_short(dtype)}. {_REDO}", path=path)
    if not isinstance(shape, list):
        raise AdapterFormatError(f"{what}: shape must be a list of integers: corrupt header. {_REDO}", path=path)
    if len(shape) > MAX_DIMS:
        raise AdapterFormatError(
            f"{what} has {len(shape):,} dimensions, more than the {MAX_DIMS} NumPy allows (a LoRA tensor has 1, 2 "
            "or 4): corrupt header.",
            path=path,
        )
    if not all(_is_usize(d) for d in shape):
        bad = next(d for d in shape if not _is_usize(d))
        raise AdapterFormatError(
            f"{what}: dimension {_short(bad)} is not a non-negative integer (safetensors refuses strings, floats "
            f"and negatives): corrupt header. {_REDO}",
            path=path,
        )
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_usize(o) for o in offsets)):
        raise AdapterFormatError(
            f"{what}: data_offsets {_short(offsets)} must be two non-negative integers (safetensors refuses "
            f"strings and floats): corrupt header. {_REDO}",
            path=path,
        )
    return name, dtype, tuple(shape), offsets[0], offsets[1]


def _check_layout(path: Path, entries: list[Entry], data_size: int) -> None:
    """safetensors' `Metadata::validate` plus its end-of-file check: sorted by offsets, the tensors tile
    the data from byte 0 to the end of the file, each exactly as large as its shape and dtype say."""
    start, previous = 0, None
    for name, dtype, shape, begin, end in sorted(entries, key=lambda e: (e[3], e[4])):
        what = f"{path}: tensor {_short(name)}"
        if begin < start:
            raise AdapterFormatError(
                f"{what} starts at byte {begin:,}, inside tensor {_short(previous)} (which ends at {start:,}): two "
                f"tensors share bytes, which safetensors refuses. {_REDO}",
                path=path,
            )
        if begin > start:
            raise AdapterFormatError(
                f"{what} starts at byte {begin:,} but the previous tensor ends at {start:,}: a hole in the data, "
                f"which safetensors refuses. {_REDO}",
                path=path,
            )
        if end < begin:
            raise AdapterFormatError(f"{what} ends at byte {end:,} before it starts: corrupt header.", path=path)
        nbytes = _nbytes(path, name, dtype, shape)
        if end - begin != nbytes:
            raise AdapterFormatError(
                f"{what} spans bytes [{begin}, {end}) but shape {list(shape)} of {dtype} needs {nbytes} bytes: "
                f"corrupt header. {_REDO}",
                path=path,
            )
        if end > data_size:
            raise AdapterFormatError(
                f"{what} ends at data byte {end:,} but the file has {data_size:,} data bytes: the file is "
                f"truncated. {_REDO}",
                path=path,
            )
        start, previous = end, name
    if start != data_size:
        raise AdapterFormatError(
            f"{path}: the tensors end at data byte {start:,} but the file has {data_size:,} data bytes: "
            f"{data_size - start:,} bytes belong to no tensor, which safetensors refuses. {_REDO}",
            path=path,
        )


def _nbytes(path: Path, name: str, dtype: str, shape: tuple[int, ...]) -> int:
    """shape × dtype size in bytes, failing as safetensors does on a 64-bit overflow or a partial byte."""
    count = 1
    for d in shape:
        count *= d
        if count > _USIZE:
            raise AdapterFormatError(
                f"{path}: tensor {_short(name)}: shape overflows 64 bits (safetensors refuses it): corrupt header.",
                path=path,
            )
    bits = count * DTYPE_BITS[dtype]
    if bits > _USIZE:
        raise AdapterFormatError(
            f"{path}: tensor {_short(name)}: size overflows 64 bits (safetensors refuses it): corrupt header.",
            path=path,
        )
    if bits % 8:
        raise AdapterFormatError(
            f"{path}: tensor {_short(name)} of {count} {dtype} values does not end on a byte boundary: corrupt header.",
            path=path,
        )
    return bits // 8


def _is_usize(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _USIZE


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
