"""Read and validate Jigsaw-format rows (`row_id, body, rule, subreddit, 4 examples[, rule_violation]`).

Everything is checked up front, before any model is loaded, and every error names the file, the
column and the row (1-based data row, its `row_id` and the line it starts on):

- the file must be non-empty with a header holding every column of `REQUIRED_COLUMNS`;
- every record must have as many fields as the header;
- `row_id` and `rule` must be non-empty, and `row_id`s unique;
- `rule_violation`, when the column is present, must be `0` or `1` in every row (`0.0`/`1.0` are
  accepted too). A column that is empty in *every* row is treated as "no labels".

Other empty cells are allowed (an empty example is rendered as an empty line) and counted in
`RowSet.warnings`. Bytes that are not UTF-8 are decoded with U+FFFD replacement characters; the
affected rows are listed in `RowSet.replaced_rows` (the CLI prints a warning) rather than refused,
because a single mis-encoded Reddit comment should not stop a 12-hour scoring run. A UTF-8 BOM is
skipped. Cells may hold embedded newlines (the real `train.csv` has many): the file is parsed with
the `csv` module, never split on lines. The file is streamed from disk record by record (`load_rows`
never holds it whole), can stop after the first rows (`limit`) and under a time budget.

A file too big to hold is checked without keeping its text: `index_rows` validates every row exactly
as `load_rows` does but keeps only what the outputs need (row_ids, rules, labels: a `RowIndex`), and
`iter_row_chunks` then reads the rows again a chunk at a time for scoring, refusing a file that changed
in between. `score` works this way, so its memory does not grow with the rows' text.

This module imports no torch.
"""

from __future__ import annotations

import csv
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from loraguard.errors import DataFormatError, InputError, TimeBudgetExceededError

__all__ = [
    "LABEL_COLUMN",
    "PARQUET_SUFFIXES",
    "REQUIRED_COLUMNS",
    "RowIndex",
    "RowSet",
    "check_header",
    "data_warnings",
    "file_format",
    "index_rows",
    "iter_row_chunks",
    "load_rows",
    "parse_labels",
    "rereadable",
    "rows_from_records",
]

REQUIRED_COLUMNS: tuple[str, ...] = (
    "row_id",
    "body",
    "rule",
    "subreddit",
    "positive_example_1",
    "positive_example_2",
    "negative_example_1",
    "negative_example_2",
)
LABEL_COLUMN = "rule_violation"
PARQUET_SUFFIXES = (".parquet", ".pq")
_NON_EMPTY = ("row_id", "rule")
_LABELS = {"0": 0, "1": 1, "0.0": 0, "1.0": 1}
_SURROGATE = re.compile("[\udc80-\udcff]")
_MAX_SHOWN = 5
_FIELD_LIMIT = 1 << 24  # csv's default (131,072 characters) is too small for pasted posts


@dataclass(frozen=True)
class RowSet:
    """Validated rows, in file order. `rows[i]` maps every column of the file to its text."""

    rows: tuple[Mapping[str, str], ...]
    columns: tuple[str, ...]
    labels: npt.NDArray[np.int8] | None
    """0/1 per row when the file has a filled `rule_violation` column, else `None`."""
    source: str = "<rows>"
    replaced_rows: tuple[str, ...] = ()
    """`row_id`s of rows whose bytes were not UTF-8 (decoded with U+FFFD)."""
    warnings: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Mapping[str, str]]:
        return iter(self.rows)

    @property
    def row_ids(self) -> tuple[str, ...]:
        return tuple(r["row_id"] for r in self.rows)

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(r["rule"] for r in self.rows)

    def chunks(self, size: int) -> Iterator[RowSet]:
        """The rows `size` at a time, in order (each a `RowSet` with its labels; no warnings)."""
        if size < 1:
            raise InputError(f"chunk size {size}: must be at least 1")
        for start in range(0, len(self.rows), size):
            labels = None if self.labels is None else self.labels[start : start + size]
            yield RowSet(self.rows[start : start + size], self.columns, labels, self.source)


@dataclass(frozen=True)
class RowIndex:
    """A checked file's rows without their text: what the outputs need (`index_rows`).

    Validated exactly as `load_rows` validates (same errors, same warnings); the texts are read again,
    a chunk at a time, by `iter_row_chunks`."""

    source: str
    columns: tuple[str, ...]
    row_ids: tuple[str, ...]
    rules: tuple[str, ...]
    """Each row's rule (equal rules share one string object)."""
    labels: npt.NDArray[np.int8] | None
    replaced_rows: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    stat: tuple[int, int] = (0, 0)
    """The file's (size, mtime_ns) when it was checked: a file that changed since is refused."""

    def __len__(self) -> int:
        return len(self.row_ids)


def file_format(path: str | os.PathLike[str]) -> str:
    """`parquet` for a `.parquet`/`.pq` file (read and written on the Ray path), else `csv`."""
    return "parquet" if Path(path).suffix.lower() in PARQUET_SUFFIXES else "csv"


def load_rows(
    path: str | Path,
    *,
    limit: int | None = None,
    time_budget_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RowSet:
    """Read and validate a Jigsaw-format CSV; raises `DataFormatError` naming column and row.

    The file is streamed: records are parsed and validated one by one straight from disk, never
    held whole (raw or decoded), so memory is the rows kept and nothing more. `limit`: stop after
    that many data rows (the rest of the file is never read; `probe` samples this way).
    `time_budget_s`: reading alone may take at most this long (`TimeBudgetExceededError` naming the
    row it reached), so `score --time-budget` covers reading too.
    """
    if limit is not None and limit < 1:
        raise InputError(f"limit {limit}: must be at least 1")
    with _CsvRecords(path) as records:
        rows = _RowValidator(records.header, source=records.source)
        _feed(records, rows, limit=limit, time_budget_s=time_budget_s, clock=clock)
    return rows.finish()


def index_rows(
    path: str | Path, *, time_budget_s: float | None = None, clock: Callable[[], float] = time.monotonic
) -> RowIndex:
    """Validate a Jigsaw-format CSV exactly as `load_rows` does, keeping only its row_ids, rules and
    labels (a `RowIndex`): memory grows with the number of rows, not with their text. Score its rows
    with `iter_row_chunks`."""
    p = Path(path)
    with _CsvRecords(p) as records:
        rows = _RowValidator(records.header, source=records.source, keep_text=False)
        _feed(records, rows, time_budget_s=time_budget_s, clock=clock)
    return rows.finish_index(_file_stat(p))


def iter_row_chunks(path: str | Path, index: RowIndex, size: int) -> Iterator[RowSet]:
    """The rows of a file checked by `index_rows`, `size` at a time, read again from disk.

    Each chunk is a `RowSet` (its texts, no warnings). A file that changed since it was checked
    (another size, modification time or row_ids) is a `DataFormatError`: the predictions would no
    longer match the rows."""
    if size < 1:
        raise InputError(f"chunk size {size}: must be at least 1")
    p = Path(path)
    changed = f"{p} changed after it was checked (while it was being scored): score it again once it stops changing"
    if not rereadable(p):  # a pipe: a second open would wait for a writer forever
        raise DataFormatError(f"{p} is not a regular file, so it cannot be read again: use load_rows", path=p)
    if _file_stat(p) != index.stat:
        raise DataFormatError(changed, path=p)
    with _CsvRecords(p) as records:
        rows = _RowValidator(records.header, source=records.source, unique=False)
        if tuple(rows.header) != index.columns:
            raise DataFormatError(changed, path=p)
        for line, values in records:
            rows.add(line, values)
            if len(rows) == size:
                yield _same_rows(rows.take(), index, rows.count - size, changed)
        if len(rows):
            start = rows.count - len(rows)
            yield _same_rows(rows.take(), index, start, changed)
    if rows.count != len(index) or _file_stat(p) != index.stat:
        raise DataFormatError(changed, path=p)


def _same_rows(chunk: RowSet, index: RowIndex, start: int, changed: str) -> RowSet:
    if chunk.row_ids != index.row_ids[start : start + len(chunk)]:
        raise DataFormatError(changed, path=index.source)
    return chunk


def rereadable(path: str | os.PathLike[str]) -> bool:
    """Whether `path` can be read twice (`index_rows`, then `iter_row_chunks`): a regular file, not a pipe.
    A path that cannot be looked at counts as one, so its reader says what is wrong with it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return True


def _file_stat(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read: {exc}", path=path) from exc
    return info.st_size, info.st_mtime_ns


class _CsvRecords:
    """A Jigsaw CSV opened for streaming: `header` (checked, stripped), then `(line, fields)` for each
    non-blank record. Used as a context manager; read errors become `DataFormatError`s naming the line."""

    def __init__(self, path: str | Path) -> None:
        self.path = p = Path(path)
        self.source = str(p)
        self.line = 0
        try:
            # utf-8-sig skips a BOM; surrogateescape keeps each undecodable byte as one lone surrogate, so
            # the rows holding them can be found exactly (a real U+FFFD in the text is not miscounted)
            self._handle = p.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="")
        except FileNotFoundError as exc:
            raise DataFormatError(f"{p}: no such file", path=p) from exc
        except OSError as exc:
            raise DataFormatError(f"{p}: cannot read: {exc}", path=p) from exc
        try:
            self.header = self._read_header()
        except BaseException:
            self._handle.close()
            raise

    def _read_header(self) -> list[str]:
        p = self.path
        empty = f"{p} is empty: expected a header with the columns {', '.join(REQUIRED_COLUMNS)}"
        csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
        self._reader = reader = csv.reader(self._handle, strict=False)
        try:
            try:
                header = next(reader)
            except StopIteration:
                raise DataFormatError(empty, path=p) from None
            except csv.Error as exc:
                raise DataFormatError(f"{p}: the header line is not valid CSV: {exc}", path=p) from exc
            if not any(h.strip() for h in header):
                # blank first lines: an empty file if nothing else follows, else a header it lacks
                rest = next((r for r in reader if any(v.strip() for v in r)), None)
                if rest is None:
                    raise DataFormatError(empty, path=p)
                check_header([_clean(h).strip() for h in header], source=str(p))
        except OSError as exc:
            raise DataFormatError(f"{p}: cannot read: {exc}", path=p) from exc
        self.line = reader.line_num + 1
        return [_clean(h).strip() for h in header]

    def __enter__(self) -> _CsvRecords:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        p, reader = self.path, self._reader
        try:
            for values in reader:
                if values:  # csv gives [] for blank lines
                    yield self.line, values
                self.line = reader.line_num + 1
        except csv.Error as exc:
            raise DataFormatError(f"{p}: line {self.line} is not valid CSV: {exc}", path=p) from exc
        except OSError as exc:
            raise DataFormatError(f"{p}: cannot read: {exc}", path=p) from exc


def _feed(
    records: _CsvRecords,
    rows: _RowValidator,
    *,
    limit: int | None = None,
    time_budget_s: float | None,
    clock: Callable[[], float],
) -> None:
    """Validate `records` into `rows`, stopping at `limit` rows; within `time_budget_s` of reading."""
    started = clock()
    for line, values in records:
        rows.add(line, values)
        if limit is not None and len(rows) >= limit:
            break
        if time_budget_s is not None and len(rows) % 256 == 0:
            _check_reading_time(records.path, rows, line, clock() - started, time_budget_s)
    if time_budget_s is not None:
        _check_reading_time(records.path, rows, records.line, clock() - started, time_budget_s)


def _check_reading_time(path: Path, rows: _RowValidator, line: int, elapsed: float, budget: float) -> None:
    if elapsed <= budget:
        return
    from loraguard.scoring.progress import format_duration

    raise TimeBudgetExceededError(
        f"time budget {format_duration(budget)} ran out while reading {path}: {len(rows)} rows read in "
        f"{format_duration(elapsed)} (up to line {line}); nothing was scored. Raise --time-budget or score a "
        "smaller file"
    )


def rows_from_records(records: Iterable[Mapping[str, object]], *, source: str = "<rows>") -> RowSet:
    """Validate in-memory rows (e.g. `demo.rows.builtin_rows()`) exactly as `load_rows` does a file."""
    items = [dict(r) for r in records]
    if not items:
        raise DataFormatError(f"{source}: no rows")
    header = list(items[0].keys())
    table = [(i + 2, ["" if r.get(c) is None else str(r.get(c)) for c in header]) for i, r in enumerate(items)]
    for i, r in enumerate(items):
        extra = set(r) - set(header)
        if extra:
            raise DataFormatError(f"{source}: row {i + 1} has columns the first row lacks: {sorted(extra)}")
    return _validate(header, table, source=source)


def _clean(value: str) -> str:
    return _SURROGATE.sub("\ufffd", value)


def _where(index: int, row_id: str | None, line: int) -> str:
    rid = f" (row_id {row_id!r})" if row_id else ""
    return f"row {index + 1}{rid}, line {line}"


def check_header(header: Sequence[str], *, source: str) -> None:
    """Every Jigsaw column present, none twice (`DataFormatError` naming `source` otherwise)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise DataFormatError(
            f"{source}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
            f"the header has {', '.join(header) or '(nothing)'}. Expected the Jigsaw columns "
            f"{', '.join(REQUIRED_COLUMNS)}[, {LABEL_COLUMN}]",
            path=source,
        )
    dupes = sorted({h for h in header if list(header).count(h) > 1})
    if dupes:
        raise DataFormatError(f"{source}: duplicate column {', '.join(dupes)} in the header", path=source)


def _validate(header: Sequence[str], records: Iterable[tuple[int, list[str]]], *, source: str) -> RowSet:
    rows = _RowValidator(header, source=source)
    for line, values in records:
        rows.add(line, values)
    return rows.finish()


class _RowValidator:
    """Validates records one at a time (see the module docstring) and keeps the rows; `finish()` is the
    `RowSet`. Only what the rows need is kept: no copy of the file, no list of raw records.

    `keep_text=False` keeps only row_ids, rules and label cells (`finish_index()` is the `RowIndex`);
    `unique=False` skips the row_id uniqueness check (a file `index_rows` checked already)."""

    def __init__(self, header: Sequence[str], *, source: str, keep_text: bool = True, unique: bool = True) -> None:
        check_header(header, source=source)
        self.header, self.source = list(header), source
        self.keep_text, self.unique = keep_text, unique
        self.rows: list[Mapping[str, str]] = []
        self.row_ids: list[str] = []
        self.rules: list[str] = []
        self.label_cells: list[str] = []
        self.lines: list[int] = []
        self.replaced: list[str] = []
        self.seen: dict[str, int] = {}
        self.empty_cells: dict[str, int] = {}
        self.id_pos = self.header.index("row_id")
        self.has_labels = LABEL_COLUMN in self.header
        self.count = 0
        """Rows added, `take()`n ones included (their 0-based index in the file continues from here)."""

    def __len__(self) -> int:
        return len(self.rows) if self.keep_text else len(self.row_ids)

    def add(self, line: int, values: list[str]) -> None:
        header, source, index = self.header, self.source, self.count
        rid_guess = values[self.id_pos].strip() if self.id_pos < len(values) else None
        if len(values) != len(header):
            raise DataFormatError(
                f"{source}: {_where(index, rid_guess, line)} has {len(values)} fields, the header has "
                f"{len(header)}: check the quoting of that row",
                path=source,
            )
        if any(_SURROGATE.search(v) for v in values):
            self.replaced.append(rid_guess or f"#{index + 1}")
            values = [_clean(v) for v in values]
        row = dict(zip(header, values, strict=True))
        row["row_id"] = row["row_id"].strip()
        for col in _NON_EMPTY:
            if not row[col].strip():
                raise DataFormatError(
                    f"{source}: column {col} is empty in {_where(index, row['row_id'], line)}", path=source
                )
        if self.unique:
            first = self.seen.setdefault(row["row_id"], index)
            if first != index:
                raise DataFormatError(
                    f"{source}: duplicate row_id {row['row_id']!r} in row {first + 1} and "
                    f"{_where(index, row['row_id'], line)}: row_ids must be unique",
                    path=source,
                )
        for col in REQUIRED_COLUMNS:
            if not row[col].strip():
                self.empty_cells[col] = self.empty_cells.get(col, 0) + 1
        self.count += 1
        self.lines.append(line)
        if self.keep_text:
            self.rows.append(MappingProxyType(row))
            return
        self.row_ids.append(row["row_id"])
        self.rules.append(sys.intern(row["rule"]))
        if self.has_labels:
            self.label_cells.append(sys.intern(row[LABEL_COLUMN].strip()))

    def _labels(self, cells: Sequence[str], first: int = 0) -> npt.NDArray[np.int8] | None:
        if not self.has_labels:
            return None
        ids = self.row_ids if not self.keep_text else [r["row_id"] for r in self.rows]
        return parse_labels(cells, lambda i: _where(first + i, ids[i], self.lines[i]), source=self.source)

    def finish(self) -> RowSet:
        header, source, rows = self.header, self.source, self.rows
        if not rows:
            raise DataFormatError(f"{source}: the header is there but there are no data rows", path=source)
        self.seen.clear()
        labels = self._labels([r[LABEL_COLUMN].strip() for r in rows]) if self.has_labels else None
        return RowSet(
            rows=tuple(rows),
            columns=tuple(header),
            labels=labels,
            source=source,
            replaced_rows=tuple(self.replaced),
            warnings=self._warnings(labels),
        )

    def finish_index(self, stat: tuple[int, int]) -> RowIndex:
        if not self.row_ids:
            raise DataFormatError(f"{self.source}: the header is there but there are no data rows", path=self.source)
        self.seen.clear()
        labels = self._labels(self.label_cells)
        self.label_cells.clear()
        return RowIndex(
            source=self.source,
            columns=tuple(self.header),
            row_ids=tuple(self.row_ids),
            rules=tuple(self.rules),
            labels=labels,
            replaced_rows=tuple(self.replaced),
            warnings=self._warnings(labels),
            stat=stat,
        )

    def _warnings(self, labels: npt.NDArray[np.int8] | None) -> tuple[str, ...]:
        return data_warnings(self.empty_cells, self.replaced, labels_empty=self.has_labels and labels is None)

    def take(self) -> RowSet:
        """The rows kept so far as a `RowSet` (labels parsed, no warnings), then forget them."""
        rows, first = self.rows, self.count - len(self.rows)
        labels = self._labels([r[LABEL_COLUMN].strip() for r in rows], first) if self.has_labels else None
        chunk = RowSet(rows=tuple(rows), columns=tuple(self.header), labels=labels, source=self.source)
        self.rows, self.lines, self.replaced, self.empty_cells = [], [], [], {}
        return chunk


def data_warnings(empty_cells: Mapping[str, int], replaced: Sequence[str], *, labels_empty: bool) -> tuple[str, ...]:
    """The warnings of a data set: empty cells per column, rows with non-UTF-8 bytes (their row_ids),
    and a label column empty in every row. Shared by `load_rows` and the Ray path (which counts per batch)."""
    warnings = [f"{n} row{'s' if n > 1 else ''} with an empty {col}" for col, n in empty_cells.items()]
    if replaced:
        shown = ", ".join(replaced[:_MAX_SHOWN]) + (" ..." if len(replaced) > _MAX_SHOWN else "")
        warnings.append(
            f"{len(replaced)} row{'s' if len(replaced) > 1 else ''} had bytes that are not "
            f"UTF-8, decoded with U+FFFD (row_id {shown})"
        )
    if labels_empty:
        warnings.append(f"column {LABEL_COLUMN} is empty in every row: scoring without labels")
    return tuple(warnings)


def parse_labels(cells: Sequence[str], where: Callable[[int], str], *, source: str) -> npt.NDArray[np.int8] | None:
    """0/1 labels from stripped cells (`0.0`/`1.0` too); None when every cell is empty. Any other cell is
    a `DataFormatError` naming `where(index)` (the row, its row_id and line)."""
    if not any(cells):
        return None
    out = np.empty(len(cells), dtype=np.int8)
    for index, cell in enumerate(cells):
        if cell not in _LABELS:
            shown = repr(cell) if cell else "empty"
            raise DataFormatError(
                f"{source}: column {LABEL_COLUMN} is {shown} in {where(index)}: labels must be 0 or 1", path=source
            )
        out[index] = _LABELS[cell]
    out.setflags(write=False)
    return out
