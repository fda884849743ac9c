"""`MatrixFormatter`: the summary `loraguard matrix` prints of a `MatrixResult` (the rows themselves go
to its CSV and HTML files)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from loraguard.report.formatter import Formatter, OutputFormat

if TYPE_CHECKING:
    from loraguard.matrix.run import MatrixResult

__all__ = ["MatrixFormatter"]


class MatrixFormatter(Formatter["MatrixResult"]):
    formats: ClassVar[tuple[OutputFormat, ...]] = (OutputFormat.text,)
    command = "loraguard matrix"
    note = " (its rows go to the --out CSV)"

    def __init__(self, *, csv: Path | str | None = None, html: Path | str | None = None) -> None:
        self.csv = csv
        self.html = html

    def text(self, result: MatrixResult) -> str:
        """Checks, speed and verdict counts, overall and per base, then where the files are."""
        counts = ", ".join(f"{n} {v}" for v, n in result.counts().items())
        lines = [
            f"matrix: {len(result.adapters)} adapter(s) × {len(result.bases)} base(s) = {len(result.rows)} checks in "
            f"{result.elapsed_s:.2f} s ({result.checks_per_second:.0f}/s, {result.jobs} job(s), {result.executor}): "
            f"{counts}"
        ]
        for name, per in result.counts_by_base().items():
            lines.append(f"  {name}: " + ", ".join(f"{n} {v}" for v, n in per.items() if n))
        if self.csv is not None:
            lines.append(f"CSV in {self.csv}" + (f", HTML in {self.html}" if self.html is not None else ""))
        return "".join(f"{line}\n" for line in lines)
