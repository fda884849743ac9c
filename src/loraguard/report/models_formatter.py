"""`ModelsFormatter`: what `loraguard models list|pull|path` print, as text or JSON (`loraguard.models/1`).

The result is a `ModelsView`: the lines a person reads and the document a script reads, built by the
command from `loraguard.models`' records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loraguard.report.formatter import Formatter, json_text

__all__ = ["MODELS_SCHEMA", "ModelsFormatter", "ModelsView"]

MODELS_SCHEMA = "loraguard.models/1"


@dataclass(frozen=True)
class ModelsView:
    lines: Sequence[str]
    document: Mapping[str, Any]


class ModelsFormatter(Formatter[ModelsView]):
    command = "loraguard models"

    def text(self, result: ModelsView) -> str:
        return "".join(f"{line}\n" for line in result.lines)

    def json(self, result: ModelsView) -> str:
        return json_text({"schema": MODELS_SCHEMA, **result.document}, ensure_ascii=False)
