"""One adapter × base check of the matrix: the `Cell` to run, the `MatrixRow` it becomes, `check_cell`.

A cell runs `loraguard.check` wherever an executor puts it and is reduced to a small picklable
`MatrixRow`. Anything a check raises becomes a row with verdict `error` and the message (`check_cell`
never raises), and a worker process dying under a cell becomes one too (`worker_failed_row`), so one
bad adapter never stops the scan.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Cell", "CellFn", "MatrixRow", "check_cell", "run_chunk", "worker_failed_row"]

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
    """(engine, verdict) per `--engine`."""


CellFn = Callable[[Cell], MatrixRow]
"""What runs one cell: `check_cell`, or a stand-in (tests inject one that kills its worker)."""


def check_cell(cell: Cell) -> MatrixRow:
    """Run one check and reduce it to a row. Never raises (except KeyboardInterrupt)."""
    started = time.perf_counter()
    base_label = cell.base if cell.base is not None else "(claimed)"
    try:
        from loraguard.checks.checker import check

        if cell.engines:
            report = check(cell.adapter, cell.base, scan_values=cell.scan_values, engines=list(cell.engines))
        else:
            report = check(cell.adapter, cell.base, scan_values=cell.scan_values)
        return _row_of(report, cell, base_label, (time.perf_counter() - started) * 1000)
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


def run_chunk(fn: CellFn, cells: Sequence[Cell]) -> list[MatrixRow]:
    """`fn` on each cell, in order: what one worker task runs (picklable: it crosses to processes and Ray)."""
    return [fn(c) for c in cells]


def worker_failed_row(cell: Cell, exc: BaseException) -> MatrixRow:
    """The `error` row of a cell whose worker died even when it ran alone (a segfault, the OOM killer)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return MatrixRow(
        cell.adapter,
        cell.base if cell.base is not None else "(claimed)",
        "error",
        error=f"worker process failed: {type(exc).__name__}: {first}"[:500],
        engines=tuple((e, "n/a") for e in cell.engines),
    )


def _row_of(report: Any, cell: Cell, base_label: str, ms: float) -> MatrixRow:
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
        from loraguard.engines import engine_verdicts

        found: Mapping[str, str]
        try:
            found = engine_verdicts(report)
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
