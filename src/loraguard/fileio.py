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
from typing import IO

from loraguard.errors import OutputExistsError


def atomic_write(path: str | os.PathLike[str], content: str | Callable[[IO[str]], None], *,
                 overwrite: bool = False) -> Path:
    """Write `content` (a string, or a function given the open text handle) to `path` atomically."""
    target = Path(path)
    exists = f"{target} already exists: pass --overwrite to replace it"
    if target.exists() and not overwrite:
        raise OutputExistsError(exists, path=target)
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            if isinstance(content, str):
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
