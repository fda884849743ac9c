"""Checking and normalising what users hand the registry: names, refs, bases, weights, sources, URLs.

All failures are `InputError`s naming the value and what to pass instead, so the CLI exits 2
with one line and the server can return a 400.
"""

from __future__ import annotations

import getpass
import math
import os
import re
from pathlib import Path

from loraguard.errors import InputError

__all__ = [
    "DEFAULT_URL",
    "default_actor",
    "normalize_base",
    "parse_ref",
    "registry_url",
    "validate_name",
    "validate_tags",
    "validate_weight",
]

DEFAULT_URL = "sqlite:///loraguard-registry.db"
"""A SQLite file in the working folder."""
ENV_URL = "LORAGUARD_REGISTRY"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_REF = re.compile(r"^(?P<name>[^@\s]+)(?:@(?P<version>\d+))?$")


def registry_url(url: str | None = None) -> str:
    """The registry URL to use: `url` if given, else `$LORAGUARD_REGISTRY`, else `DEFAULT_URL`.

    A value without `://` is taken as a SQLite file path (`team.db` → `sqlite:///team.db`).
    """
    chosen = url or os.environ.get(ENV_URL) or DEFAULT_URL
    chosen = chosen.strip()
    if "://" not in chosen:
        chosen = f"sqlite:///{Path(chosen).expanduser()}"
    return chosen


def normalize_base(base: str) -> str:
    """A local base folder (or config.json) → its resolved absolute path; a catalog name or Hub id unchanged.

    The server matches adapters to the base it serves with this, so `./bases/q` and `/abs/bases/q` agree.
    """
    text = str(base).strip()
    if not text:
        raise InputError("base: empty. Pass a base folder, a catalog name or a Hub id.")
    local = Path(text).expanduser()
    if local.exists():
        return str(local.resolve())
    return text


def validate_name(name: str) -> str:
    """An adapter name: letters, digits, `.`, `_`, `-` (no `@`: it separates the version in refs)."""
    if not _NAME.match(name or ""):
        raise InputError(
            f"adapter name {name!r}: use 1-128 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit (no '@' or '/')"
        )
    return name


def parse_ref(ref: str) -> tuple[str, int | None]:
    """`name` → (name, None: the highest version); `name@3` → (name, 3)."""
    match = _REF.match((ref or "").strip())
    if not match:
        raise InputError(f"adapter ref {ref!r}: expected NAME or NAME@VERSION (e.g. toxicity@3)")
    version = match.group("version")
    return match.group("name"), (int(version) if version is not None else None)


def validate_weight(weight: float) -> float:
    """A traffic weight: a finite number ≥ 0 (weights are relative: the server normalises them)."""
    try:
        value = float(weight)
    except (TypeError, ValueError):
        raise InputError(f"traffic weight {weight!r}: not a number") from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"traffic weight {weight!r}: must be a finite number >= 0 (0 = shadow)")
    return value


def validate_tags(tags: object) -> tuple[str, ...]:
    """Non-empty tag strings, duplicates dropped, order kept."""
    if isinstance(tags, str):
        tags = [tags]
    out: list[str] = []
    for tag in tags or ():  # type: ignore[attr-defined]
        text = str(tag).strip()
        if not text:
            raise InputError("tag: empty. Pass non-empty tags (e.g. --tag team-a)")
        if text not in out:
            out.append(text)
    return tuple(out)


def default_actor(actor: str | None = None) -> str:
    """Who is acting: `actor` if given, else the OS user (getpass), else `unknown`."""
    if actor and actor.strip():
        return actor.strip()
    try:
        return getpass.getuser()
    except Exception:  # no user name in a bare container
        return "unknown"
