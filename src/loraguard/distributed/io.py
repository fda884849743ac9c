"""Data in for the Ray path: CSV or Parquet, chosen by the file's suffix (`loraguard.scoring.data.file_format`).

Input is read with Ray Data (`read_csv` / `read_parquet`) with every column as raw bytes or
values, never type-inferred: a `row_id` like `007` must stay `007`, and cells are decoded on the
workers exactly as `load_rows` decodes a file (UTF-8, undecodable bytes become U+FFFD and are
reported). The header (or Parquet schema) is read on the driver first, so a missing column fails
before any cluster work starts, with the same message `load_rows` gives.

Predictions are written by the score pipeline (`loraguard.scoring.output.write_predictions`, which
writes Parquet for a `.parquet`/`.pq` path), whichever executor scored them.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loraguard.errors import DataFormatError
from loraguard.scoring.data import REQUIRED_COLUMNS, check_header, file_format

__all__ = ["csv_arrow_options", "read_columns", "read_dataset"]

_HEADER_BYTES = 1 << 20


def read_columns(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The column names of a CSV header or Parquet schema, checked like `load_rows` checks them."""
    p = Path(path)
    if not p.is_file():
        raise DataFormatError(f"{p}: no such file", path=p)
    if file_format(p) == "parquet":
        import pyarrow.parquet as pq

        try:
            names = list(pq.read_schema(p).names)
        except Exception as exc:  # pyarrow raises ArrowInvalid / OSError variants
            raise DataFormatError(f"{p}: not a readable Parquet file: {exc}", path=p) from exc
    else:
        names = _csv_header(p)
    check_header(names, source=str(p))
    return tuple(names)


def _csv_header(p: Path) -> list[str]:
    with p.open("rb") as fh:
        head = fh.read(_HEADER_BYTES)
    head = head.removeprefix(codecs.BOM_UTF8)
    if not head.strip():
        raise DataFormatError(f"{p} is empty: expected a header with the columns {', '.join(REQUIRED_COLUMNS)}", path=p)
    text = head.decode("utf-8", errors="replace")
    try:
        header = next(csv.reader(io.StringIO(text, newline="")))
    except (StopIteration, csv.Error) as exc:
        raise DataFormatError(f"{p}: the header line is not valid CSV: {exc}", path=p) from exc
    return [h.strip() for h in header]


def read_dataset(path: str | os.PathLike[str], columns: Sequence[str]) -> Any:
    """A Ray Dataset of `path` (CSV columns all bytes, see `csv_arrow_options`), in file order."""
    import ray.data

    source = os.fspath(Path(path).resolve())
    if file_format(path) == "parquet":
        return ray.data.read_parquet(source)
    return ray.data.read_csv(source, **csv_arrow_options(path))


def csv_arrow_options(path: str | os.PathLike[str]) -> dict[str, Any]:
    """pyarrow CSV options that keep every cell as raw bytes (`pa.binary()`, empty is `b""`, never
    null or a number) and allow newlines inside quoted cells, as the real Jigsaw CSV needs."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    raw_names = _raw_header_names(Path(path))
    return {
        "parse_options": pacsv.ParseOptions(newlines_in_values=True),
        "convert_options": pacsv.ConvertOptions(
            column_types={n: pa.binary() for n in raw_names}, strings_can_be_null=False
        ),
    }


def _raw_header_names(p: Path) -> list[str]:
    """The header cells exactly as pyarrow sees them (before `strip`), to type every column."""
    with p.open("rb") as fh:
        head = fh.read(_HEADER_BYTES).removeprefix(codecs.BOM_UTF8)
    return next(csv.reader(io.StringIO(head.decode("utf-8", errors="replace"), newline="")))
