"""The one interface every command's output goes through: a `Formatter` per result type.

A result (a `CheckReport`, `ProbeReport`, `GateReport`, `MonitorReport`, a score run, registry
records...) stays a frozen dataclass with its stage; `report/` only formats it. Each result type
has one `Formatter` subclass here, named `<result>_formatter.py`, whose `formats` say which of
`text`, `json` and `markdown` it has; `render(result, fmt)` returns exactly what the command writes
to stdout. A new output format is a method on this class (and an `OutputFormat` member); a new
result type is a new subclass. HTML pages are written to files by the `html_*` modules.

    from loraguard.report.check_formatter import CheckFormatter
    sys.stdout.write(CheckFormatter(color=True).render(report, "markdown"))
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar

from loraguard.errors import InputError
from loraguard.textsafe import json_safe, printable

__all__ = ["Formatter", "OutputFormat", "json_text"]

R = TypeVar("R")


class OutputFormat(StrEnum):
    """The values of every command's `--format` option."""

    text = "text"
    json = "json"
    markdown = "markdown"


class Formatter(ABC, Generic[R]):
    """Text, markdown and JSON forms of one result type. Subclasses implement `text` and the others
    they list in `formats`; options (colour, width, a title...) go to their constructor."""

    formats: ClassVar[tuple[OutputFormat, ...]] = (OutputFormat.text, OutputFormat.json)
    """The formats this result has, the default first."""
    command: ClassVar[str] = "this command"
    """How error messages name the command, e.g. `loraguard check`."""
    note: ClassVar[str] = ""
    """Appended to the unsupported-format message, e.g. where the full result goes instead."""

    def render(self, result: R, fmt: OutputFormat | str = OutputFormat.text) -> str:
        """`result` in format `fmt`, exactly as written to stdout (newline-terminated).

        Names and texts from inputs come out escaped (`textsafe.printable`): JSON through `json_text`,
        text and markdown here (coloured text through `console.SafeConsole`, before rich adds its colours).
        """
        chosen = self.format_of(fmt)
        if chosen is OutputFormat.json:
            return self.json(result)
        out = self.markdown(result) if chosen is OutputFormat.markdown else self.text(result)
        return out if getattr(self, "color", False) else printable(out)

    @classmethod
    def format_of(cls, fmt: OutputFormat | str) -> OutputFormat:
        """`fmt` as an `OutputFormat` this formatter has, else an `InputError` naming the ones it has."""
        try:
            chosen = OutputFormat(fmt)
        except ValueError:
            chosen = None
        if chosen is None or chosen not in cls.formats:
            raise InputError(f"--format {fmt}: {cls.command} writes {cls.supported()}{cls.note}")
        return chosen

    @classmethod
    def supported(cls) -> str:
        """The formats in words: "text, json or markdown"."""
        names = [f.value for f in cls.formats]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]

    @abstractmethod
    def text(self, result: R) -> str:
        """For a terminal (or a log)."""

    def json(self, result: R) -> str:
        """The result's `to_dict()` as indented JSON (it carries its `schema`)."""
        return json_text(result.to_dict())  # type: ignore[attr-defined]

    def markdown(self, result: R) -> str:
        """For a CI job summary (only where `formats` lists it)."""
        raise InputError(f"--format markdown: {self.command} writes {self.supported()}{self.note}")


def json_text(doc: Any, *, ensure_ascii: bool = True) -> str:
    """`doc` as indented JSON, newline-terminated, its strings escaped by `textsafe.json_safe` (strict
    UTF-8 JSON every parser reads, with no raw control characters once decoded)."""
    return json.dumps(json_safe(doc), indent=2, ensure_ascii=ensure_ascii) + "\n"
