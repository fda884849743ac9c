"""Writing results: atomically, and never over an existing file unless asked.

Every file is written to a temporary file in the destination's folder, flushed and fsynced, then
moved into place with `os.replace`; on any error the temporary file is removed, so a crash never
leaves a half-written prediction file or a stray temp file. Without `overwrite`, an existing
destination raises `OutputExistsError` (checked up front by `check_outputs`, before hours of
scoring, and again just before the move).

With several adapters, `PRED.csv` becomes one file per adapter: `PRED.<adapter-name>.csv`. Predictions
are CSV, or Parquet for a `.parquet`/`.pq` path (the Ray path reads and writes Parquet).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from loraguard.errors import InputError, OutputExistsError
from loraguard.fileio import atomic_file, atomic_write
from loraguard.scoring.data import file_format

if TYPE_CHECKING:
    from loraguard.scoring.answers import AnswerTokens
    from loraguard.scoring.api import EncodedPrompts

__all__ = [
    "PromptDump",
    "atomic_write",
    "check_outputs",
    "prediction_paths",
    "write_json",
    "write_predictions",
]


def prediction_paths(out: str | Path, names: Sequence[str | None]) -> list[Path]:
    """`out` itself for a single run; `stem.<name>.suffix` per adapter when there are several."""
    path = Path(out)
    if len(names) <= 1:
        return [path]
    return [path.with_name(f"{path.stem}.{name}{path.suffix}") for name in names]


def check_outputs(paths: Iterable[Path], *, overwrite: bool) -> None:
    """Refuse existing files (unless `overwrite`), missing folders and duplicate destinations."""
    seen: set[Path] = set()
    for p in paths:
        resolved = p.resolve()
        if resolved in seen:
            raise InputError(f"output {p} is given twice", path=p)
        seen.add(resolved)
        if not p.parent.is_dir():
            raise InputError(f"output {p}: the folder {p.parent} does not exist", path=p)
        if p.is_dir():
            raise InputError(f"output {p} is a folder", path=p)
        if p.exists() and not overwrite:
            raise OutputExistsError(f"output {p} already exists: pass --overwrite to replace it", path=p)


def write_predictions(
    path: str | Path, row_ids: Sequence[str], probabilities: Iterable[float], *, overwrite: bool = False
) -> Path:
    """`row_id,rule_violation` with probabilities clipped to [0, 1], checked before anything is written
    (as many probabilities as row_ids, every one finite). CSV (`repr` precision), or Parquet for a
    `.parquet`/`.pq` path: a two-column table `row_id: string, rule_violation: double`."""
    target = Path(path)
    values = [float(p) for p in probabilities]
    if len(row_ids) != len(values):
        raise InputError(f"{len(row_ids)} row_ids but {len(values)} probabilities")
    for rid, value in zip(row_ids, values, strict=True):
        if not math.isfinite(value):
            raise InputError(f"row_id {rid!r}: probability {value} is not finite")
    if not target.parent.is_dir():
        raise InputError(f"output {target}: the folder {target.parent} does not exist", path=target)
    clipped = [min(1.0, max(0.0, v)) for v in values]
    if file_format(target) == "parquet":
        return _write_parquet(target, row_ids, clipped, overwrite=overwrite)

    def write(handle: IO[str]) -> None:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["row_id", "rule_violation"])
        writer.writerows([rid, repr(value)] for rid, value in zip(row_ids, clipped, strict=True))

    return atomic_write(target, write, overwrite=overwrite)


def _write_parquet(path: Path, row_ids: Sequence[str], values: Sequence[float], *, overwrite: bool) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "row_id": pa.array(list(row_ids), pa.string()),
            "rule_violation": pa.array(list(values), pa.float64()),
        }
    )
    return atomic_write(path, lambda fh: pq.write_table(table, fh), overwrite=overwrite, binary=True)


def write_json(path: str | Path, data: Any, *, overwrite: bool = False) -> Path:
    """Pretty JSON (NaN written as null)."""
    text = json.dumps(_finite(data), indent=2, ensure_ascii=False) + "\n"

    def write(handle: IO[str]) -> None:
        handle.write(text)

    return atomic_write(path, write, overwrite=overwrite)


class PromptDump:
    """`--dump-prompts`, written as the prompts are scored: a `PromptSink` (call it with each chunk's
    `EncodedPrompts` and answer tokens). `PromptDump.open(path)` is a context manager; the file appears,
    whole, when it ends without an error (`atomic_file`)."""

    def __init__(self, path: Path, handle: IO[str]) -> None:
        self.path = path
        self._handle = handle
        self.rows = 0

    @classmethod
    @contextlib.contextmanager
    def open(cls, path: str | Path, *, overwrite: bool = False) -> Iterator[PromptDump]:
        with atomic_file(path, overwrite=overwrite) as handle:
            yield cls(Path(path), handle)

    def __call__(self, encoded: EncodedPrompts, answers: AnswerTokens | None) -> None:
        """One JSON object per row: row_id, prompt, input_ids (exactly what was scored), answer ids."""
        positive = list(answers.positive_ids) if answers else []
        negative = list(answers.negative_ids) if answers else []
        for rid, prompt, ids in zip(encoded.row_ids, encoded.prompts, encoded.input_ids, strict=True):
            line = {
                "row_id": rid,
                "prompt": prompt,
                "input_ids": list(ids),
                "positive_token_ids": positive,
                "negative_token_ids": negative,
                "add_special_tokens": encoded.add_special_tokens,
            }
            self._handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        self.rows += len(encoded.row_ids)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
