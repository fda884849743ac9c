"""The matrix CSV: its columns, its text, and an atomic write that never clobbers by accident."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from loraguard.fileio import atomic_write
from loraguard.matrix.cell import MatrixRow
from loraguard.matrix.pipeline import MatrixResult
from loraguard.textsafe import printable

__all__ = ["COLUMNS", "csv_text", "write_csv"]

COLUMNS = (
    "adapter",
    "base",
    "verdict",
    "categories",
    "errors",
    "warnings",
    "top_inferred_base",
    "ranks",
    "targets",
    "size_bytes",
    "ms",
    "error",
)
"""Fixed columns; one `engine:<name>` column per requested engine follows them."""


def _cells(row: MatrixRow) -> list[object]:
    return [
        row.adapter,
        row.base,
        row.verdict,
        ";".join(row.categories),
        row.errors,
        row.warnings,
        row.top_inferred_base,
        ";".join(str(r) for r in row.ranks),
        ";".join(row.targets),
        row.size_bytes,
        f"{row.ms:.2f}",
        row.error,
    ]


def csv_text(result: MatrixResult) -> str:
    """The whole CSV (header + one line per row) as text; names from the file system are escaped
    (`textsafe.printable`), so a folder name with undecodable bytes or control characters is written
    as `\\xff` / `\\x1b` text and the file stays valid UTF-8."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*COLUMNS, *(f"engine:{e}" for e in result.engines)])
    for row in result.rows:
        found = dict(row.engines)
        cells = [*_cells(row), *(found.get(e, "n/a") for e in result.engines)]
        writer.writerow([printable(c, newlines=False) if isinstance(c, str) else c for c in cells])
    return buf.getvalue()


def write_csv(result: MatrixResult, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write the CSV atomically (temporary file + rename). Without `overwrite`, an existing `path` is
    never replaced, even one created while the matrix ran: raises `OutputExistsError`."""
    return atomic_write(path, csv_text(result), overwrite=overwrite)
