"""Files the safe way: reading untrusted JSON within bounds, and writing atomically.

Reading (`read_bounded`, `loads_bounded`): at most a given number of bytes is read, whatever the file
claims or is (a symlink loop, a FIFO, /dev/zero), and JSON nested deeper than `MAX_JSON_DEPTH` is refused
by a linear pre-scan before the parser (which would recurse) sees it. Failures are `InputLimitError`s
with one line saying what; each reader wraps them in its own `InputError`, naming its file.

Writing (`atomic_write`, or `atomic_file` a piece at a time): a temporary file beside the target,
fsync, then into place. A crash never leaves a half-written file, the temporary file never survives,
and without `overwrite` an existing target is never replaced, not even one that appeared while we wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from loraguard.errors import InputLimitError, OutputExistsError

MAX_JSON_DEPTH = 64
"""Deepest nesting of `[` and `{` accepted. Real configs and safetensors headers nest 2 to 6 deep."""
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_CHUNK = 1 << 20


def read_bounded(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of regular file `path`, refusing more than `limit` bytes (`InputLimitError`).

    Never blocks or reads forever: a FIFO, a device or a socket is refused before it is opened for
    reading, and at most `limit + 1` bytes are read even if the file grows. A symlink loop, a missing
    file or a permission error is an `OSError` (its message says which).
    """
    target = Path(path)
    info = target.stat()  # follows symlinks; a loop raises OSError (ELOOP)
    if not stat.S_ISREG(info.st_mode):
        raise InputLimitError(f"{target}: not a regular file (a folder, FIFO, device or socket)")
    if info.st_size > limit:
        raise InputLimitError(f"{target}: {info.st_size:,} bytes, more than the {limit:,} bytes accepted")
    with open(target, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise InputLimitError(f"{target}: more than the {limit:,} bytes accepted")
    return data


def json_too_deep(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `[`/`{` nest deeper than `limit` in JSON text `data` (brackets inside strings do not
    count), in linear time and bounded memory, without parsing it."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return False  # too few brackets to nest that deep
    import numpy as np  # only for documents with many brackets (cold commands never pay for it)

    bare = _STRING.sub(b'""', data)
    depth = 0
    for start in range(0, len(bare), _CHUNK):
        chunk = np.frombuffer(bare[start : start + _CHUNK], dtype=np.uint8)
        step = ((chunk == ord("[")) | (chunk == ord("{"))).astype(np.int64)
        step -= (chunk == ord("]")) | (chunk == ord("}"))
        running = np.cumsum(step) + depth
        if running.size:
            if int(running.max()) > limit:
                return True
            depth = int(running[-1])
    return False


def loads_bounded(data: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads(data)` for untrusted text: nesting beyond `max_depth` is a `InputLimitError` (checked
    before parsing), as is invalid JSON or UTF-8 (the message gives line and column)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if json_too_deep(raw, max_depth):
        raise InputLimitError(f"JSON nested more than {max_depth} levels deep")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputLimitError(f"invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})") from None
    except UnicodeDecodeError as exc:
        raise InputLimitError(f"not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except RecursionError:  # only if the caller's recursion limit is far below the depth allowed
        raise InputLimitError(f"JSON nested too deep to parse (limit {max_depth})") from None


def atomic_write(
    path: str | os.PathLike[str],
    content: str | bytes | Callable[[IO[Any]], None],
    *,
    overwrite: bool = False,
    binary: bool = False,
) -> Path:
    """Write `content` (a string, bytes, or a function given the open handle) to `path` atomically.

    The handle is text (UTF-8, no newline translation) unless `binary` or `content` is bytes."""
    binary = binary or isinstance(content, bytes)
    with atomic_file(path, overwrite=overwrite, binary=binary) as handle:
        if isinstance(content, str):
            handle.write(content.encode("utf-8") if binary else content)
        elif isinstance(content, bytes):
            handle.write(content)
        else:
            content(handle)
    return Path(path)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], *, overwrite: bool = False, binary: bool = False) -> Iterator[IO[Any]]:
    """A handle to write `path` atomically, a piece at a time: the file appears (whole) only when the
    `with` block ends without an error; on an error the temporary file is removed and `path` is untouched."""
    target = Path(path)
    exists = f"{target} already exists: pass --overwrite to replace it"
    if target.exists() and not overwrite:
        raise OutputExistsError(exists, path=target)
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        handle: IO[Any] = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")
        with handle:
            yield handle
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


def _place_new(tmp: str, target: Path, exists: str) -> None:
    try:
        os.link(tmp, target)  # atomic, and fails if the target appeared meanwhile
    except FileExistsError:
        raise OutputExistsError(exists, path=target) from None
    except OSError:  # a file system without hard links
        if target.exists():
            raise OutputExistsError(exists, path=target) from None
        os.replace(tmp, target)
