"""Which `adapter_config.json` keys does the installed PEFT know?

PEFT itself computes `set(json) - signature(LoraConfig.__init__)` and drops the rest with a
warning. Importing PEFT imports torch (seconds), so we read the same field list from PEFT's
source with `ast`: the dataclass fields of `PeftConfigMixin`, `PeftConfig` and `LoraConfig`.
Without PEFT installed, a snapshot taken from PEFT 0.21.2 is used and the finding says so.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

SNAPSHOT_VERSION = "0.21.2"
_CLASSES = {"PeftConfigMixin", "PeftConfig", "LoraConfig"}
# Keys PEFT writes or accepts outside the dataclass fields.
_ALWAYS_KNOWN = frozenset(
    {"peft_type", "task_type", "base_model_name_or_path", "revision", "inference_mode", "auto_mapping", "peft_version"}
)


@dataclass(frozen=True)
class KnownFields:
    fields: frozenset[str]
    peft_version: str
    installed: bool


@lru_cache(maxsize=1)
def known_lora_fields() -> KnownFields:
    """The installed PEFT's LoRA config fields, else the bundled snapshot."""
    spec = importlib.util.find_spec("peft")
    if spec is not None and spec.origin:
        root = Path(spec.origin).parent
        try:
            fields = _fields_from(root / "config.py") | _fields_from(root / "tuners" / "lora" / "config.py")
            version = importlib.metadata.version("peft")
        except (OSError, SyntaxError, importlib.metadata.PackageNotFoundError):
            fields = frozenset()
        if fields:
            return KnownFields(fields | _ALWAYS_KNOWN, version, True)
    return KnownFields(_snapshot(), SNAPSHOT_VERSION, False)


def _fields_from(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name in _CLASSES:
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                    names.add(stmt.target.id)
    return frozenset(names)


def _snapshot() -> frozenset[str]:
    text = Path(__file__).with_name("peft_fields_snapshot.txt").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip()) | _ALWAYS_KNOWN
