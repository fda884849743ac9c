"""The case study's 3-stage parser for generated text, with honest per-stage counts.

Stages, exactly as in the case study's `predict_single_v2`:

1. `number`: the whole (stripped) text is a float, clamped to [0, 1];
2. `regex`: the first match of `\\b(0\\.\\d+|1\\.0+)\\b`;
3. `keyword`: `yes` or `violate` in the lowercased text gives 0.8;
4. otherwise `default`: 0.5, and the row counts as *not parsed*.

One deliberate difference: stage 1 refuses `nan` and `inf` (Python's `float()` accepts them and the
clamp would turn them into 1.0 or NaN). The case study's "100% parse success" hid that every value
was 0.0, so `parsed` only says a stage decided; the degenerate-output check looks at the values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_VALUE",
    "KEYWORD_VALUE",
    "STAGES",
    "ParseSummary",
    "ParsedAnswer",
    "parse_answer",
    "parse_answers",
]

STAGES: tuple[str, ...] = ("number", "regex", "keyword", "default")
KEYWORD_VALUE = 0.8
DEFAULT_VALUE = 0.5
_NUMBER = re.compile(r"\b(0\.\d+|1\.0+)\b")
_KEYWORDS = ("yes", "violate")


@dataclass(frozen=True)
class ParsedAnswer:
    """One generated text, the value read from it and the stage that decided it."""

    text: str
    value: float
    stage: str

    @property
    def parsed(self) -> bool:
        return self.stage != "default"


@dataclass(frozen=True)
class ParseSummary:
    """Parsed values for many texts, a parsed mask (stages 1-3) and how many rows each stage decided."""

    values: npt.NDArray[np.float64]
    parsed: npt.NDArray[np.bool_]
    stages: tuple[str, ...]
    stage_counts: Mapping[str, int]


def parse_answer(text: str) -> ParsedAnswer:
    """Read a probability from generated text with the case study's three stages."""
    stripped = text.strip()
    try:
        value = float(stripped)
    except ValueError:
        pass
    else:
        if math.isfinite(value):
            return ParsedAnswer(text, max(0.0, min(1.0, value)), "number")
    match = _NUMBER.search(stripped)
    if match:
        return ParsedAnswer(text, max(0.0, min(1.0, float(match.group(1)))), "regex")
    lowered = stripped.lower()
    if any(word in lowered for word in _KEYWORDS):
        return ParsedAnswer(text, KEYWORD_VALUE, "keyword")
    return ParsedAnswer(text, DEFAULT_VALUE, "default")


def parse_answers(texts: Iterable[str]) -> ParseSummary:
    """Parse every text; `stage_counts` has every stage (zeros included) so nothing is hidden."""
    answers = [parse_answer(t) for t in texts]
    values = np.array([a.value for a in answers], dtype=np.float64)
    parsed = np.array([a.parsed for a in answers], dtype=bool)
    counts = dict.fromkeys(STAGES, 0)
    for a in answers:
        counts[a.stage] += 1
    values.setflags(write=False)
    parsed.setflags(write=False)
    return ParseSummary(
        values=values, parsed=parsed, stages=tuple(a.stage for a in answers), stage_counts=MappingProxyType(counts)
    )
