"""The model card beside an adapter (`README.md`): the `base_model` its YAML front matter names."""

from __future__ import annotations

import re
from pathlib import Path

CARD_FILE = "README.md"


def card_base_model(folder: Path | None) -> str | None:
    """`base_model` from the front matter of the model card in `folder`, if any (never raises)."""
    if folder is None:
        return None
    try:
        text = (folder / CARD_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if not text.startswith("---"):
        return None
    front = text.split("---", 2)[1] if text.count("---") >= 2 else ""
    m = re.search(r"^base_model:\s*(?:\n\s*-\s*)?['\"]?([^'\"\n]+)", front, re.M)
    return m[1].strip() if m else None
