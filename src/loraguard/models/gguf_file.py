"""A GGUF file checked before anything loads it: magic bytes, metadata, every tensor inside the file.

Read with the `gguf` package's reader (memory-mapped; no tensor data is read, torch is not
imported). A file that is not GGUF, is cut short, or names no architecture gives one
`BaseModelResolutionError` naming the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loraguard.errors import BaseModelResolutionError, MissingExtraError

__all__ = ["GGUF_MAGIC", "GgufInfo", "find_gguf", "inspect_gguf"]

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class GgufInfo:
    """What a GGUF file's metadata says about the model in it."""

    path: str
    size: int
    version: int
    architecture: str
    name: str | None
    tensor_count: int
    file_type: int | None
    """llama.cpp's `general.file_type` (e.g. 3 = mostly Q4_1), when present."""
    tensor_types: dict[str, int]
    """How many tensors of each ggml type (F32, Q4_1...)."""
    chat_template: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "version": self.version,
            "architecture": self.architecture,
            "name": self.name,
            "tensor_count": self.tensor_count,
            "file_type": self.file_type,
            "tensor_types": dict(self.tensor_types),
            "has_chat_template": self.chat_template is not None,
        }


def find_gguf(path: str | os.PathLike[str]) -> Path:
    """`path` itself when it is a file; the one `*.gguf` file in it when it is a folder."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    if p.is_dir():
        found = sorted(q for q in p.glob("*.gguf") if q.is_file())
        if len(found) == 1:
            return found[0]
        if not found:
            raise BaseModelResolutionError(f"base {p}: the folder holds no .gguf file", path=p)
        names = ", ".join(q.name for q in found)
        raise BaseModelResolutionError(
            f"base {p}: the folder holds {len(found)} .gguf files ({names}); pass the one to use", path=p
        )
    raise BaseModelResolutionError(f"GGUF file {p}: no such file or folder", path=p)


def _field(reader: Any, key: str) -> Any:
    """A scalar or string metadata value, or None when the key is absent."""
    field = reader.fields.get(key)
    if field is None or not field.data:
        return None
    part = field.parts[field.data[0]]
    if part.dtype.kind == "u" and part.dtype.itemsize == 1 and len(field.types) == 1 and int(field.types[0]) == 8:
        return bytes(part).decode("utf-8", errors="replace")  # GGUFValueType.STRING == 8
    return part[0].item() if len(part) else None


def inspect_gguf(path: str | os.PathLike[str]) -> GgufInfo:
    """Check that `path` is a whole GGUF file and read its metadata (no tensor data)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        with open(p, "rb") as handle:
            head = handle.read(len(GGUF_MAGIC))
    except OSError as exc:
        raise BaseModelResolutionError(f"GGUF file {p}: cannot read it: {exc.strerror or exc}", path=p) from exc
    if head != GGUF_MAGIC:
        shown = f"starts with {head!r}" if head else "is empty"
        raise BaseModelResolutionError(
            f"GGUF file {p}: not a GGUF file (it {shown}, a GGUF file starts with {GGUF_MAGIC!r})", path=p
        )
    try:
        from gguf import GGUFReader
    except ImportError as exc:  # pragma: no cover - gguf is a core dependency
        raise MissingExtraError("Reading GGUF files", "ml") from exc
    try:
        reader = GGUFReader(p)
    except Exception as exc:  # the reader raises ValueError, IndexError, struct errors... on a cut file
        raise BaseModelResolutionError(
            f"GGUF file {p}: truncated or corrupt ({type(exc).__name__}: {exc}); download it again", path=p
        ) from exc
    for tensor in reader.tensors:
        end = int(tensor.data_offset) + int(tensor.n_bytes)
        if end > size:
            raise BaseModelResolutionError(
                f"GGUF file {p}: truncated: tensor {tensor.name} ends at byte {end:,} but the file has "
                f"{size:,} bytes; download it again",
                path=p,
            )
    arch = _field(reader, "general.architecture")
    if not isinstance(arch, str) or not arch:
        raise BaseModelResolutionError(f"GGUF file {p}: no general.architecture in its metadata", path=p)
    counts: dict[str, int] = {}
    for tensor in reader.tensors:
        counts[tensor.tensor_type.name] = counts.get(tensor.tensor_type.name, 0) + 1
    name = _field(reader, "general.name")
    file_type = _field(reader, "general.file_type")
    template = _field(reader, "tokenizer.chat_template")
    version = _field(reader, "GGUF.version")
    return GgufInfo(
        path=str(p),
        size=size,
        version=int(version) if version is not None else 0,
        architecture=arch,
        name=name if isinstance(name, str) else None,
        tensor_count=len(reader.tensors),
        file_type=int(file_type) if isinstance(file_type, int) else None,
        tensor_types=dict(sorted(counts.items())),
        chat_template=template if isinstance(template, str) else None,
    )
