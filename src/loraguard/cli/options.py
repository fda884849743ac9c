"""Option types shared by the commands."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import typer

from loraguard.errors import InputError
from loraguard.report.formatter import Formatter

MODEL_BASE_HELP = (
    "Base model: a folder with config.json, a .gguf file (converted once) or a known model's name "
    "(smollm2-135m-instruct: pulled once; see `loraguard models list`)."
)
"""`--base` of the commands that load the model (probe, score, serve)."""


def format_option(formatter: type[Formatter[Any]]) -> Any:
    """The `--format/-f` option every command takes: `text` by default, and the formats `formatter`
    has (any other value is a usage error, exit 2, before the command does any work)."""
    names = [f.value for f in formatter.formats]

    def supported(value: str) -> str:
        try:
            return formatter.format_of(value).value
        except InputError as exc:
            raise typer.BadParameter(f"{value!r}: " + str(exc).removeprefix(f"--format {value}: ")) from None

    return typer.Option(
        names[0],
        "--format",
        "-f",
        metavar="|".join(names),
        callback=supported,
        help=f"Output format: {formatter.supported()}.",
    )


class Method(StrEnum):
    """How a probability is read: `logits` (answer-token logits) or `generate` (text, then parsed)."""

    logits = "logits"
    generate = "generate"


class DType(StrEnum):
    auto = "auto"
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"
