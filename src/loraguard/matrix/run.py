"""`run_matrix`: check every adapter against every base in parallel; one row per pair, never a crash.

Each cell runs `loraguard.check` in a worker and is reduced to a small picklable `MatrixRow`. Anything a
cell raises (or a worker process dying under it) becomes a row with verdict `error` and the message,
so one bad adapter never stops the scan. Rows come back in adapter × base order whatever the order
the workers finish in.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Literal

from loraguard.errors import InputError
from loraguard.matrix.discover import discover_adapters

__all__ = ["Cell", "ExecutorKind", "MatrixResult", "MatrixRow", "check_cell", "engines_available", "run_matrix"]

ExecutorKind = Literal["auto", "serial", "process", "thread"]
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Cell:
    """One adapter × base check to run (picklable: it crosses to the worker processes)."""

    adapter: str
    base: str | None
    scan_values: bool = True
    engines: tuple[str, ...] = ()


@dataclass(frozen=True)
class MatrixRow:
    """The outcome of one adapter × base check, flat enough for a CSV row."""

    adapter: str
    base: str
    """The base as given; `(claimed) <name>` when none was given and the adapter's claim was used."""
    verdict: str
    """`pass`, `warn`, `fail`, or `error` when the check itself could not run (see `error`)."""
    categories: tuple[str, ...] = ()
    """Finding categories, errors first, then warnings, then infos."""
    errors: int = 0
    warnings: int = 0
    top_inferred_base: str = ""
    ranks: tuple[int, ...] = ()
    """Ranks of the LoRA tensors (the config's `r` when no tensor could be read)."""
    targets: tuple[str, ...] = ()
    size_bytes: int = 0
    ms: float = 0.0
    error: str = ""
    engines: tuple[tuple[str, str], ...] = ()
    """(engine, verdict) per `--engine`, when engine profiles are installed."""


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
    engines_available: bool = False
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


def engines_available() -> bool:
    """True when `loraguard.engines.engine_verdicts` (serving-engine profiles) can be imported."""
    return _engine_verdicts() is not None


def _engine_verdicts() -> Callable[[Any], Mapping[str, str]] | None:
    try:
        from loraguard.engines import engine_verdicts
    except ImportError:
        return None
    return engine_verdicts


def check_cell(cell: Cell) -> MatrixRow:
    """Run one check and reduce it to a row. Never raises (except KeyboardInterrupt)."""
    started = time.perf_counter()
    base_label = cell.base if cell.base is not None else "(claimed)"
    try:
        from loraguard.checks.checker import check

        report = None
        verdicts = _engine_verdicts() if cell.engines else None
        if verdicts is not None:
            try:
                report = check(cell.adapter, cell.base, scan_values=cell.scan_values, engines=list(cell.engines))
            except TypeError:  # check() without engine support (yet)
                report = None
        if report is None:
            report = check(cell.adapter, cell.base, scan_values=cell.scan_values)
        return _row_of(report, cell, base_label, (time.perf_counter() - started) * 1000, verdicts)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # one bad cell must never stop the scan
        return MatrixRow(
            cell.adapter,
            base_label,
            "error",
            ms=(time.perf_counter() - started) * 1000,
            error=_describe(exc),
            engines=tuple((e, "n/a") for e in cell.engines),
        )


def _row_of(
    report: Any, cell: Cell, base_label: str, ms: float, verdicts: Callable[[Any], Mapping[str, str]] | None
) -> MatrixRow:
    a = report.adapter
    if cell.base is None:
        base_label = f"(claimed) {report.base['name']}" if report.base else "(claimed) ?"
    worst: dict[str, int] = {}
    for f in report.findings:
        rank = _SEVERITY_ORDER.get(f.severity.value, 3)
        worst[f.category] = min(worst.get(f.category, rank), rank)
    categories = tuple(sorted(worst, key=lambda c: (worst[c], c)))
    ranks = tuple(a.get("tensor_ranks") or ([a["r"]] if isinstance(a.get("r"), int) else []))
    targets = a.get("target_modules")
    target_t = (targets,) if isinstance(targets, str) else tuple(sorted(str(t) for t in targets or ()))
    engines: tuple[tuple[str, str], ...] = ()
    if cell.engines:
        found: Mapping[str, str] = {}
        if verdicts is not None:
            try:
                found = verdicts(report)
            except (TypeError, ValueError, KeyError) as exc:
                found = {e: f"n/a ({type(exc).__name__})" for e in cell.engines}
        engines = tuple((e, str(found.get(e, "n/a"))) for e in cell.engines)
    return MatrixRow(
        adapter=cell.adapter,
        base=base_label,
        verdict=report.verdict.value,
        categories=categories,
        errors=len(report.errors),
        warnings=len(report.warnings),
        top_inferred_base=report.inferred_bases[0].name if report.inferred_bases else "",
        ranks=ranks,
        targets=target_t,
        size_bytes=int(a.get("size_bytes") or 0),
        ms=ms,
        engines=engines,
    )


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ").strip()
    return text[:500]


def _check_chunk(cells: Sequence[Cell]) -> list[MatrixRow]:
    return [check_cell(c) for c in cells]


def run_matrix(
    paths: Iterable[str | os.PathLike[str]],
    bases: Iterable[str | None] = (),
    *,
    jobs: int = 1,
    header_only: bool = False,
    hub_cache: bool | str | os.PathLike[str] = False,
    engines: Iterable[str] = (),
    executor: ExecutorKind = "auto",
    discover: bool = True,
) -> MatrixResult:
    """Check every adapter found below `paths` against every base in `bases`.

    `bases` are what `check` accepts (folder, config.json, catalog name, Hub id); none means each
    adapter's claimed base. `header_only` skips the value scans (zero/NaN checks) for speed.
    `jobs` > 1 runs cells in parallel: `executor="auto"` uses worker processes (the check is
    CPU-bound Python, so threads do not scale; see benchmarks/matrix_throughput.py), `"thread"` and
    `"serial"` force the others. With `discover=False`, `paths` are taken as adapters verbatim
    (repeats included). Raises `AdapterNotFoundError` for a path that does not exist; every other
    problem becomes a row.
    """
    if jobs < 1:
        raise InputError(f"jobs must be at least 1, got {jobs}")
    started = time.perf_counter()
    adapters = discover_adapters(paths, hub_cache=hub_cache) if discover else tuple(os.fspath(p) for p in paths)
    base_list: tuple[str | None, ...] = tuple(os.fspath(b) if b is not None else None for b in bases) or (None,)
    wanted = tuple(dict.fromkeys(engines))
    cells = [Cell(a, b, not header_only, wanted) for a in adapters for b in base_list]
    kind = _kind(executor, jobs, len(cells))
    rows = _run_cells(cells, kind, jobs)
    return MatrixResult(
        rows=tuple(rows),
        adapters=adapters,
        bases=base_list,
        jobs=jobs,
        executor=kind,
        header_only=header_only,
        elapsed_s=time.perf_counter() - started,
        engines=wanted,
        engines_available=bool(wanted) and engines_available(),
    )


def _kind(executor: ExecutorKind, jobs: int, cells: int) -> str:
    if executor == "auto":
        return "serial" if jobs == 1 or cells < 2 * jobs else "process"
    return executor


def _run_cells(cells: list[Cell], kind: str, jobs: int) -> list[MatrixRow]:
    if kind == "serial" or not cells:
        return _check_chunk(cells)
    results: dict[int, MatrixRow] = {}
    start = 0
    if kind == "process":  # the first cell warms the caches (catalog, rules) that forked workers inherit
        results[0], start = check_cell(cells[0]), 1
    chunk = max(1, min(64, math.ceil((len(cells) - start) / (jobs * 4))))
    chunks = [list(range(i, min(i + chunk, len(cells)))) for i in range(start, len(cells), chunk)]
    retry: list[int] = []
    with _executor(kind, jobs) as pool:
        futures: dict[Future[list[MatrixRow]], list[int]] = {
            pool.submit(_check_chunk, [cells[i] for i in idx]): idx for idx in chunks
        }
        for future in as_completed(futures):
            idx = futures[future]
            try:
                results.update(zip(idx, future.result(), strict=True))
            except Exception:  # a worker died (BrokenProcessPool) or could not pickle: isolate the cells
                retry.extend(idx)
    for i in sorted(retry):
        results[i] = _isolated(cells[i], kind)
    return [results[i] for i in range(len(cells))]


def _isolated(cell: Cell, kind: str) -> MatrixRow:
    """Rerun one cell alone in a fresh worker, so a cell that kills its process only fails itself."""
    try:
        with _executor(kind, 1) as pool:
            return pool.submit(check_cell, cell).result()
    except Exception as exc:
        return MatrixRow(
            cell.adapter,
            cell.base if cell.base is not None else "(claimed)",
            "error",
            error=f"worker process failed: {_describe(exc)}",
            engines=tuple((e, "n/a") for e in cell.engines),
        )


def _executor(kind: str, jobs: int) -> Executor:
    if kind == "thread":
        return ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="loraguard-matrix")
    if kind != "process":
        raise InputError(f"unknown executor {kind!r}: use auto, serial, process or thread")
    return ProcessPoolExecutor(max_workers=jobs, mp_context=_mp_context())


def _mp_context() -> multiprocessing.context.BaseContext:
    """The start method for worker processes.

    fork where available and the process runs a single Python thread (workers start in
    milliseconds, nothing is re-imported, no `if __name__ == "__main__"` guard is needed); else
    forkserver (workers fork from a server that preloaded the checker; the caller's main module
    needs the usual guard); else spawn. `LORAGUARD_MP_START` forces one.
    """
    methods = multiprocessing.get_all_start_methods()
    forced = os.environ.get("LORAGUARD_MP_START")
    if forced in methods:
        method = forced
    elif "fork" in methods and threading.active_count() == 1 and sys.platform == "linux":
        method = "fork"
    elif "forkserver" in methods:
        method = "forkserver"
    else:
        method = "spawn"
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["loraguard.checks.checker", "loraguard.matrix.run"])
    return ctx
