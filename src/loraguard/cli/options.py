"""Option types shared by the commands."""

from __future__ import annotations

from enum import StrEnum


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


class TextOrJson(StrEnum):
    """`--format` of the commands that have no markdown output."""

    text = "text"
    json = "json"


class Method(StrEnum):
    """How a probability is read: `logits` (answer-token logits) or `generate` (text, then parsed)."""

    logits = "logits"
    generate = "generate"


class DType(StrEnum):
    auto = "auto"
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"
