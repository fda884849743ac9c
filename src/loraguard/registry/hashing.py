"""SHA-256 of every file of an adapter folder: what `add` records and `verify` (and the server) re-checks.

Every regular file counts, recursively (a swapped tokenizer or config matters as much as the weights);
symlinks are followed when they point at files, as in a Hugging Face snapshot folder. Keys are POSIX
relative paths, sorted, so two machines produce the same mapping.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from loraguard.errors import InputError

__all__ = ["diff_hashes", "hash_file", "hash_files"]

_CHUNK = 1 << 20


def hash_file(path: str | Path) -> str:
    """SHA-256 hex of one file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_files(folder: str | Path) -> dict[str, str]:
    """Relative path → SHA-256 hex of every regular file below `folder` (sorted by path).

    Raises `InputError` when `folder` is not a folder (the registry stores folders, not single files).
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InputError(f"{root}: not a folder. Pass the adapter folder (adapter_config.json and weights).", path=root)
    found = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}
    return {rel: hash_file(found[rel]) for rel in sorted(found)}


def diff_hashes(
    recorded: Mapping[str, str], current: Mapping[str, str]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(changed, missing, added) relative paths between the recorded and the current hashes."""
    changed = tuple(sorted(k for k in recorded if k in current and current[k] != recorded[k]))
    missing = tuple(sorted(k for k in recorded if k not in current))
    added = tuple(sorted(k for k in current if k not in recorded))
    return changed, missing, added
