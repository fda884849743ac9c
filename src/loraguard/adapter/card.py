"""The model card beside an adapter (`README.md`): the `base_model` its YAML front matter names."""

from __future__ import annotations

import re
from pathlib import Path

CARD_FILE = "README.md"


MAX_CARD_BYTES = 1 << 20
"""The front matter is at the top: only the card's first MiB is read (a FIFO or device is never read)."""


def card_base_model(folder: Path | None) -> str | None:
    """`base_model` from the front matter of the model card in `folder`, if any (never raises)."""
    if folder is None:
        return None
    path = folder / CARD_FILE
    try:
        if not path.is_file():
            return None
        with open(path, "rb") as handle:
            text = handle.read(MAX_CARD_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None
    if not text.startswith("---"):
        return None
    front = text.split("---", 2)[1] if text.count("---") >= 2 else ""
    m = re.search(r"^base_model:\s*(?:\n\s*-\s*)?['\"]?([^'\"\n]+)", front, re.M)
    return m[1].strip() if m else None
