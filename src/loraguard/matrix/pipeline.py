"""`run_matrix`: check every adapter against every base; one row per pair, never a crash, whatever runs it.

Three steps, the middle one delegated to an executor (`loraguard.matrix.executor.MatrixExecutor`):

1. plan: the adapters are discovered below the paths and paired with every base, one `Cell` each;
2. execute: the cells go to the executor in chunks (about four per worker, at most 64 cells each);
   the cells of a chunk whose worker died are rerun one per task, so only a cell that keeps killing
   its worker becomes an `error` row (`worker process failed: ...`). Anything a check raises is an
   `error` row already (`check_cell`);
3. finish: the rows, in adapter × base order whatever order the workers finished in, in a
   `MatrixResult` that `write_csv` and the HTML report write alike for every executor.

Executors: `serial`, `thread`, `process` (`loraguard.matrix.local`), `RayMatrixExecutor` (Ray tasks).
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loraguard.errors import InputError
from loraguard.matrix.cell import Cell, CellFn, MatrixRow, check_cell, worker_failed_row
from loraguard.matrix.discover import discover_adapters
from loraguard.matrix.executor import MatrixExecutor
from loraguard.matrix.local import ExecutorKind, local_executor

__all__ = ["MatrixResult", "run_matrix"]

_MAX_CHUNK = 64
_CHUNKS_PER_WORKER = 4


@dataclass(frozen=True)
class MatrixResult:
    """Every row of a matrix run, with what was run and how."""

    rows: tuple[MatrixRow, ...]
    adapters: tuple[str, ...]
    bases: tuple[str | None, ...]
    jobs: int
    executor: str
    header_only: bool
    elapsed_s: float
    engines: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def checks_per_second(self) -> float:
        return len(self.rows) / self.elapsed_s if self.elapsed_s > 0 else math.inf

    def counts(self) -> dict[str, int]:
        """Rows per verdict (`pass`, `warn`, `fail`, `error`), every key present."""
        found = Counter(r.verdict for r in self.rows)
        return {v: found.get(v, 0) for v in ("pass", "warn", "fail", "error")}

    def counts_by_base(self) -> dict[str, dict[str, int]]:
        """Per base column: rows per verdict."""
        out: dict[str, dict[str, int]] = {}
        for row in self.rows:
            out.setdefault(row.base, dict.fromkeys(("pass", "warn", "fail", "error"), 0))[row.verdict] += 1
        return out

    def category_counts(self) -> dict[str, int]:
        """How many rows report each category, most frequent first."""
        found = Counter(c for r in self.rows for c in r.categories)
        return dict(found.most_common())


def run_matrix(
    paths: Iterable[str | os.PathLike[str]],
    bases: Iterable[str | None] = (),
    *,
    jobs: int = 1,
    header_only: bool = False,
    hub_cache: bool | str | os.PathLike[str] = False,
    engines: Iterable[str] = (),
    executor: ExecutorKind | MatrixExecutor = "auto",
    discover: bool = True,
    cell_fn: CellFn = check_cell,
) -> MatrixResult:
    """Check every adapter found below `paths` against every base in `bases`.

    `bases` are what `check` accepts (folder, config.json, catalog name, Hub id); none means each
    adapter's claimed base. `header_only` skips the value scans (zero/NaN checks) for speed.
    `jobs` > 1 runs cells in parallel: `executor="auto"` uses worker processes (the check is
    CPU-bound Python, so threads do not scale; see benchmarks/matrix_throughput.py), `"thread"` and
    `"serial"` force the others; a `MatrixExecutor` (e.g. `loraguard.distributed.RayMatrixExecutor`)
    runs them its own way, on as many workers as it has. With `discover=False`, `paths` are taken as
    adapters verbatim (repeats included). `cell_fn` replaces `check_cell` (it must be picklable for
    processes and Ray). Raises `AdapterNotFoundError` for a path that does not exist; every other
    problem becomes a row.
    """
    if jobs < 1:
        raise InputError(f"jobs must be at least 1, got {jobs}")
    if isinstance(executor, MatrixExecutor):
        executor.check()
    started = time.perf_counter()
    adapters = discover_adapters(paths, hub_cache=hub_cache) if discover else tuple(os.fspath(p) for p in paths)
    base_list: tuple[str | None, ...] = tuple(os.fspath(b) if b is not None else None for b in bases) or (None,)
    wanted = tuple(dict.fromkeys(engines))
    cells = [Cell(a, b, not header_only, wanted) for a in adapters for b in base_list]
    runner = executor if isinstance(executor, MatrixExecutor) else local_executor(executor, jobs, len(cells))
    with runner.start() as workers:
        rows = _run_cells(runner, workers.count, cells, cell_fn)
    return MatrixResult(
        rows=tuple(rows),
        adapters=adapters,
        bases=base_list,
        jobs=workers.count,
        executor=runner.name,
        header_only=header_only,
        elapsed_s=time.perf_counter() - started,
        engines=wanted,
        meta=dict(workers.meta),
    )


def _run_cells(executor: MatrixExecutor, workers: int, cells: Sequence[Cell], fn: CellFn) -> list[MatrixRow]:
    """Every cell's row, in cell order: chunks first, then the cells of any failed chunk one by one."""
    if not cells:
        return []
    results: dict[int, MatrixRow] = {}
    start = 0
    if executor.warm_up:
        results[0], start = fn(cells[0]), 1
    size = max(1, min(_MAX_CHUNK, math.ceil((len(cells) - start) / (workers * _CHUNKS_PER_WORKER))))
    chunks = [list(range(i, min(i + size, len(cells)))) for i in range(start, len(cells), size)]
    failed: list[int] = []
    for index, outcome in executor.run_chunks(fn, [[cells[i] for i in chunk] for chunk in chunks]):
        if isinstance(outcome, BaseException):  # its worker died: find the cell that kills it
            failed.extend(chunks[index])
        else:
            results.update(zip(chunks[index], outcome, strict=True))
    failed.sort()
    for index, alone in executor.run_alone(fn, [cells[i] for i in failed]):
        cell = failed[index]
        results[cell] = worker_failed_row(cells[cell], alone) if isinstance(alone, BaseException) else alone
    return [results[i] for i in range(len(cells))]
