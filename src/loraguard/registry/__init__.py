"""The adapter registry: which checked adapter versions exist, which serve, with what traffic, and who did what.

    from loraguard.registry import Registry, Status, admit
    with Registry() as reg:                    # $LORAGUARD_REGISTRY or ./loraguard-registry.db
        entry = admit(reg, "toxicity", "./adapters/toxicity", base="./bases/qwen")  # checked, a shadow candidate
        reg.promote(entry.ref)

`Registry` (`store.py`) only stores; `admit` (`admission.py`) is the use-case that checks (and
optionally probes) an adapter before storing it. The records, `hash_files` and the URL helpers
import without SQLAlchemy; `Registry` needs the `registry` extra and raises `MissingExtraError`
naming it when SQLAlchemy is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loraguard.registry.hashing import diff_hashes, hash_files
from loraguard.registry.model import REGISTRY_SCHEMA, Entry, Event, Status, VerifyResult
from loraguard.registry.validate import DEFAULT_URL, normalize_base, parse_ref, registry_url

if TYPE_CHECKING:
    from loraguard.registry.admission import admit
    from loraguard.registry.store import Registry

__all__ = [
    "DEFAULT_URL",
    "REGISTRY_SCHEMA",
    "Entry",
    "Event",
    "Registry",
    "Status",
    "VerifyResult",
    "admit",
    "diff_hashes",
    "hash_files",
    "normalize_base",
    "parse_ref",
    "registry_url",
]


def __getattr__(name: str) -> Any:
    if name == "admit":
        from loraguard.registry.admission import admit

        return admit
    if name == "Registry":
        try:
            import sqlalchemy  # noqa: F401
        except ImportError:
            from loraguard.errors import MissingExtraError

            raise MissingExtraError("The registry", "registry") from None
        from loraguard.registry.store import Registry

        return Registry
    raise AttributeError(f"module 'loraguard.registry' has no attribute {name!r}")
