"""Writing files the safe way: a temporary file beside the target, fsync, then into place.

A crash never leaves a half-written file, the temporary file never survives, and without
`overwrite` an existing target is never replaced, not even one that appeared while we wrote.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from loraguard.errors import OutputExistsError


def atomic_write(
    path: str | os.PathLike[str],
    content: str | bytes | Callable[[IO[Any]], None],
    *,
    overwrite: bool = False,
    binary: bool = False,
) -> Path:
    """Write `content` (a string, bytes, or a function given the open handle) to `path` atomically.

    The handle is text (UTF-8, no newline translation) unless `binary` or `content` is bytes."""
    target = Path(path)
    exists = f"{target} already exists: pass --overwrite to replace it"
    if target.exists() and not overwrite:
        raise OutputExistsError(exists, path=target)
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        binary = binary or isinstance(content, bytes)
        handle: IO[Any] = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")
        with handle:
            if isinstance(content, str):
                handle.write(content.encode("utf-8") if binary else content)
            elif isinstance(content, bytes):
                handle.write(content)
            else:
                content(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        if overwrite:
            os.replace(tmp, target)
        else:
            _place_new(tmp, target, exists)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return target


def _place_new(tmp: str, target: Path, exists: str) -> None:
    try:
        os.link(tmp, target)  # atomic, and fails if the target appeared meanwhile
    except FileExistsError:
        raise OutputExistsError(exists, path=target) from None
    except OSError:  # a file system without hard links
        if target.exists():
            raise OutputExistsError(exists, path=target) from None
        os.replace(tmp, target)
