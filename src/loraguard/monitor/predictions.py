"""Prediction and label CSV files: read, validate, align by `row_id`, write atomically.

A predictions file is a CSV with a header, a `row_id` column and a probability column
(`rule_violation` by default, the Jigsaw submission format). Every value must be a finite number
in [0, 1] and every `row_id` must appear once. An optional `parsed` column (1/0, true/false)
marks rows whose model output could not be parsed; the monitor counts those as parse failures.

Errors are `DataFormatError`s naming the file, the line and what to do about it.
"""

from __future__ import annotations

import contextlib
import csv
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt

from loraguard.errors import DataFormatError
from loraguard.fileio import atomic_write

__all__ = [
    "DEFAULT_COLUMN",
    "Labels",
    "Predictions",
    "align",
    "align_index",
    "iter_predictions",
    "read_column",
    "read_labels",
    "read_predictions",
    "write_predictions",
]

DEFAULT_COLUMN = "rule_violation"
_TRUE = frozenset({"1", "true", "yes", "y", "t", "1.0"})
_FALSE = frozenset({"0", "false", "no", "n", "f", "0.0", ""})
_MAX_LISTED = 3


@dataclass(frozen=True, eq=False)
class Predictions:
    """One probability per `row_id` (arrays are read-only; `row_ids` are unique strings)."""

    row_ids: npt.NDArray[np.str_]
    values: npt.NDArray[np.float64]
    parsed: npt.NDArray[np.bool_] | None = None
    """False where the model output could not be parsed (from an optional `parsed` column)."""
    source: str = "<memory>"
    """The file the predictions came from, used in messages."""

    def __post_init__(self) -> None:
        ids = np.asarray(self.row_ids, dtype=np.str_)
        values = np.asarray(self.values, dtype=np.float64)
        if ids.ndim != 1 or values.shape != ids.shape:
            raise DataFormatError(
                f"{self.source}: row_ids and values must be 1-D arrays of the same length, "
                f"got {ids.shape} and {values.shape}",
                path=self.source,
            )
        parsed = None if self.parsed is None else np.asarray(self.parsed, dtype=np.bool_)
        if parsed is not None and parsed.shape != ids.shape:
            raise DataFormatError(f"{self.source}: parsed mask has shape {parsed.shape}, expected {ids.shape}")
        bad = np.flatnonzero(~((values >= 0.0) & (values <= 1.0)))
        if bad.size:
            i = int(bad[0])
            raise DataFormatError(
                f"{self.source}: row_id {str(ids[i])!r} has value {float(values[i])!r}, outside [0, 1] "
                f"({bad.size} such rows). Predictions must be probabilities.",
                path=self.source,
            )
        _check_unique(ids, self.source)
        for name, array in (("row_ids", ids), ("values", values), ("parsed", parsed)):
            if array is not None:
                array.setflags(write=False)
                object.__setattr__(self, name, array)

    def __len__(self) -> int:
        return int(self.values.size)

    def take(self, index: npt.NDArray[np.intp]) -> Predictions:
        """The rows at `index`, in that order."""
        parsed = None if self.parsed is None else self.parsed[index]
        return Predictions(self.row_ids[index], self.values[index], parsed, self.source)


@dataclass(frozen=True, eq=False)
class Labels:
    """Binary labels per `row_id`, with an optional group (e.g. the Jigsaw `rule`) per row."""

    row_ids: npt.NDArray[np.str_]
    y: npt.NDArray[np.int8]
    groups: npt.NDArray[np.str_] | None = None
    source: str = "<memory>"

    def aligned_to(self, row_ids: npt.NDArray[np.str_], *, source: str = "predictions") -> Labels:
        """These labels reordered to `row_ids`; every id must have a label (extra labels are dropped)."""
        index = align_index(row_ids, self.row_ids, what=source, other=self.source, allow_extra=True)
        groups = None if self.groups is None else self.groups[index]
        return Labels(row_ids, self.y[index], groups, self.source)


CHUNK_ROWS = 65_536
"""Rows per chunk of `iter_predictions`."""


def read_predictions(path: str | Path, *, column: str = DEFAULT_COLUMN) -> Predictions:
    """Read and validate a predictions CSV (`row_id` + `column`, optional `parsed`), streamed from disk
    (`iter_predictions`): memory holds the arrays, never the file."""
    chunks = list(iter_predictions(path, column=column))
    parsed = None if chunks[0].parsed is None else np.concatenate([c.parsed for c in chunks if c.parsed is not None])
    if len(chunks) == 1:
        return chunks[0]
    return Predictions(
        np.concatenate([c.row_ids for c in chunks]), np.concatenate([c.values for c in chunks]), parsed, str(path)
    )


def iter_predictions(
    path: str | Path, *, column: str = DEFAULT_COLUMN, chunk_rows: int = CHUNK_ROWS
) -> Iterator[Predictions]:
    """A predictions CSV as consecutive `Predictions` of at most `chunk_rows` rows, streamed from disk:
    memory is one chunk plus 8 bytes per row (a hash of each `row_id`), whatever the file's size, so
    `loraguard monitor` watches a file of any size in bounded memory.

    Every row is validated as `read_predictions` does, and `row_id`s are unique across the whole file: a
    duplicate within a chunk stops the iteration at its line; one across chunks is found (by its hash,
    then confirmed by a second pass naming its lines) once the last chunk was yielded.
    """
    name = str(path)
    hashes: list[npt.NDArray[np.int64]] = []
    with _csv_rows(path, required=("row_id", column)) as (header, records):
        id_at, value_at = header.index("row_id"), header.index(column)
        parsed_at = header.index("parsed") if "parsed" in header else None
        ids: list[str] = []
        values: list[float] = []
        flags: list[bool] = []
        seen: dict[str, int] = {}
        for line, row in records:
            rid = _row_id(row[id_at], seen, line, name)
            values.append(_probability(row[value_at], column, name, line))
            if parsed_at is not None:
                flags.append(_flag(row[parsed_at], "parsed", name, line))
            ids.append(rid)
            if len(ids) >= chunk_rows:
                hashes.append(np.fromiter((hash(i) for i in ids), dtype=np.int64, count=len(ids)))
                yield _chunk(ids, values, flags if parsed_at is not None else None, name)
                ids, values, flags = [], [], []
                seen.clear()
        if ids:
            if hashes:
                hashes.append(np.fromiter((hash(i) for i in ids), dtype=np.int64, count=len(ids)))
            yield _chunk(ids, values, flags if parsed_at is not None else None, name)
    if len(hashes) > 1:
        ordered = np.concatenate(hashes)
        hashes.clear()
        ordered.sort()
        twice = ordered[1:][ordered[1:] == ordered[:-1]]
        if twice.size:
            _raise_duplicates(path, column, frozenset(twice.tolist()))


def _chunk(ids: list[str], values: list[float], flags: list[bool] | None, name: str) -> Predictions:
    parsed = None if flags is None else np.array(flags, dtype=np.bool_)
    return Predictions(np.array(ids, dtype=np.str_), np.array(values, dtype=np.float64), parsed, name)


def _row_id(text: str, seen: dict[str, int], line: int, name: str) -> str:
    rid = text.strip()
    if not rid:
        raise DataFormatError(f"{name} line {line}: empty row_id. Every row needs an id.", path=name)
    first = seen.setdefault(rid, line)
    if first != line:
        raise DataFormatError(
            f"{name} line {line}: duplicate row_id {rid!r} (first on line {first}). Each row_id must appear once.",
            path=name,
        )
    return rid


def _raise_duplicates(path: str | Path, column: str, suspects: frozenset[int]) -> None:
    """Second pass over a file whose row_id hashes collide: the lines of a real duplicate (or nothing)."""
    name = str(path)
    seen: dict[str, int] = {}
    with _csv_rows(path, required=("row_id", column)) as (header, records):
        id_at = header.index("row_id")
        for line, row in records:
            rid = row[id_at].strip()
            if hash(rid) in suspects:
                _row_id(rid, seen, line, name)


def read_labels(path: str | Path, *, column: str = DEFAULT_COLUMN, group: str | None = "rule") -> Labels:
    """Read 0/1 labels (e.g. the Jigsaw train.csv). `group` is used when the column exists."""
    header, rows, lines = _read_csv(path, required=("row_id", column))
    name = str(path)
    id_at, y_at = header.index("row_id"), header.index(column)
    ids = _row_ids(rows, id_at, lines, name)
    y = np.empty(len(rows), dtype=np.int8)
    for i, row in enumerate(rows):
        text = row[y_at].strip()
        if text not in ("0", "1", "0.0", "1.0"):
            raise DataFormatError(
                f"{name} line {lines[i]}: label {column} = {text!r} is not 0 or 1. "
                f"Labels must be binary (row_id {row[id_at]!r}).",
                path=name,
            )
        y[i] = 1 if text.startswith("1") else 0
    groups = None
    if group is not None and group in header:
        g_at = header.index(group)
        groups = np.array([row[g_at] for row in rows], dtype=np.str_)
    return Labels(ids, y, groups, name)


def read_column(path: str | Path, column: str) -> tuple[npt.NDArray[np.str_], npt.NDArray[np.str_]]:
    """`(row_ids, values)` of one text column (e.g. `rule` to segment predictions by)."""
    header, rows, lines = _read_csv(path, required=("row_id", column))
    at = header.index(column)
    return _row_ids(rows, header.index("row_id"), lines, str(path)), np.array([row[at] for row in rows], dtype=np.str_)


def align(a: Predictions, b: Predictions) -> tuple[Predictions, Predictions]:
    """`(a, b)` with `b` reordered to `a`'s row order; both must hold exactly the same `row_id`s."""
    index = align_index(a.row_ids, b.row_ids, what=a.source, other=b.source)
    return a, b.take(index)


def align_index(
    row_ids: npt.NDArray[np.str_],
    other_ids: npt.NDArray[np.str_],
    *,
    what: str,
    other: str,
    allow_extra: bool = False,
) -> npt.NDArray[np.intp]:
    """Index `i` with `other_ids[i] == row_ids`; raises naming the missing (and extra) ids."""
    order = np.argsort(other_ids, kind="stable")
    sorted_other = other_ids[order]
    pos = np.minimum(np.searchsorted(sorted_other, row_ids), sorted_other.size - 1)
    found = sorted_other[pos] == row_ids if sorted_other.size else np.zeros(row_ids.size, dtype=np.bool_)
    problems = []
    if not found.all():
        missing = row_ids[~found]
        problems.append(f"{missing.size} row_id(s) of {what} are not in {other} ({_listed(missing)})")
    if not allow_extra and other_ids.size > int(found.sum()):
        extra = np.setdiff1d(other_ids, row_ids)
        problems.append(f"{extra.size} row_id(s) of {other} are not in {what} ({_listed(extra)})")
    if problems:
        raise DataFormatError(
            f"row_ids do not match: {'; '.join(problems)}. Score both files on the same rows.",
            path=other,
        )
    return order[pos]


def write_predictions(
    predictions: Predictions, path: str | Path, *, column: str = DEFAULT_COLUMN, overwrite: bool = False
) -> Path:
    """Write `row_id,<column>` atomically (temp file in the same folder + `os.replace`)."""

    def write(handle: IO[str]) -> None:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["row_id", column])
        writer.writerows(zip(predictions.row_ids.tolist(), map(repr, predictions.values.tolist()), strict=True))

    return atomic_write(path, write, overwrite=overwrite)


MAX_ROW_ID_CHARS = 1_024
"""Longest `row_id` accepted: ids are kept per row (as fixed-width arrays), so one absurd id would
multiply the memory of every row."""
_ESCAPED = re.compile("[\udc80-\udcff]")


@contextlib.contextmanager
def _csv_rows(
    path: str | Path, *, required: Sequence[str]
) -> Iterator[tuple[list[str], Iterator[tuple[int, list[str]]]]]:
    """`(header, rows)`: the file streamed from disk, `rows` yielding `(line, fields)` per non-blank record
    (never the whole file in memory, raw or decoded). Errors name the file and the line."""
    name = str(path)
    try:
        # surrogateescape: a byte that is not UTF-8 becomes one lone surrogate, reported with its line
        handle = Path(path).open("r", encoding="utf-8-sig", errors="surrogateescape", newline="")
    except OSError as exc:
        raise DataFormatError(f"cannot read {name}: {exc.strerror or exc}. Check the path.", path=name) from exc
    with handle:
        csv.field_size_limit(max(csv.field_size_limit(), 1 << 24))
        reader = csv.reader(handle)
        try:
            first = next(reader, None)
            while first is not None and not any(c.strip() for c in first):
                first = next(reader, None)  # leading blank lines
        except (csv.Error, OSError) as exc:
            raise DataFormatError(f"{name} line {reader.line_num}: not valid CSV ({exc})", path=name) from exc
        if first is None:
            raise DataFormatError(f"{name} is empty: expected a header row with {', '.join(required)}", path=name)
        _check_utf8(first, name, reader.line_num)
        header = [h.strip() for h in first]
        missing = [c for c in required if c not in header]
        if missing:
            raise DataFormatError(
                f"{name} has no {', '.join(repr(m) for m in missing)} column (columns: {', '.join(header)}). "
                f"Expected a header with {', '.join(required)}.",
                path=name,
            )
        id_at = header.index("row_id") if "row_id" in header else None

        def rows() -> Iterator[tuple[int, list[str]]]:
            start, count = reader.line_num + 1, 0
            try:
                for row in reader:
                    if row:
                        _check_utf8(row, name, start)
                        if len(row) != len(header):
                            raise DataFormatError(
                                f"{name} line {start}: {len(row)} fields but the header has {len(header)}. "
                                "Quote fields that contain commas.",
                                path=name,
                            )
                        if id_at is not None and len(row[id_at]) > MAX_ROW_ID_CHARS:
                            raise DataFormatError(
                                f"{name} line {start}: a row_id of {len(row[id_at]):,} characters; at most "
                                f"{MAX_ROW_ID_CHARS:,} allowed",
                                path=name,
                            )
                        count += 1
                        yield start, row
                    start = reader.line_num + 1
            except (csv.Error, OSError) as exc:
                raise DataFormatError(f"{name} line {reader.line_num}: not valid CSV ({exc})", path=name) from exc
            if not count:
                raise DataFormatError(f"{name} has a header but no rows", path=name)

        yield header, rows()


def _check_utf8(row: Sequence[str], name: str, line: int) -> None:
    for cell in row:
        bad = _ESCAPED.search(cell)
        if bad is not None:
            byte = ord(bad.group()) - 0xDC00
            raise DataFormatError(
                f"{name} line {line} is not UTF-8 (byte 0x{byte:02x}): save the file as UTF-8.", path=name
            )


def _read_csv(path: str | Path, *, required: Sequence[str]) -> tuple[list[str], list[list[str]], list[int]]:
    with _csv_rows(path, required=required) as (header, records):
        rows, lines = [], []
        for line, row in records:
            rows.append(row)
            lines.append(line)
    return header, rows, lines


def _row_ids(rows: list[list[str]], at: int, lines: list[int], name: str) -> npt.NDArray[np.str_]:
    seen: dict[str, int] = {}
    for row, line in zip(rows, lines, strict=True):
        row[at] = _row_id(row[at], seen, line, name)
    return np.array(list(seen), dtype=np.str_)


def _probability(text: str, column: str, name: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataFormatError(
            f"{name} line {line}: {column} = {text.strip()!r} is not a number. "
            "Predictions must be probabilities in [0, 1].",
            path=name,
        ) from None
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        what = "is NaN" if math.isnan(value) else "is outside [0, 1]"
        raise DataFormatError(
            f"{name} line {line}: {column} = {text.strip()} {what}. "
            "Predictions must be probabilities: fix or re-run the scoring for this row.",
            path=name,
        )
    return value


def _flag(text: str, column: str, name: str, line: int) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise DataFormatError(f"{name} line {line}: {column} = {text!r} is not a boolean (1/0, true/false)", path=name)


def _check_unique(ids: npt.NDArray[np.str_], source: str) -> None:
    if ids.size < 2:
        return
    ordered = np.sort(ids)
    dup = ordered[1:][ordered[1:] == ordered[:-1]]
    if dup.size:
        raise DataFormatError(
            f"{source}: duplicate row_id(s) {_listed(np.unique(dup))}. Each row_id must appear once.",
            path=source,
        )


def _listed(ids: npt.NDArray[np.str_] | Sequence[str] | Mapping[str, object]) -> str:
    items = list(ids)
    shown = ", ".join(repr(str(i)) for i in items[:_MAX_LISTED])
    return shown + (f", … {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")
