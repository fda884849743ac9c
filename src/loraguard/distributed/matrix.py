"""`run_matrix_ray`: `run_matrix` with the adapter × base checks spread over a Ray cluster as tasks.

Adapters are discovered on the driver exactly as `run_matrix` does, the cells are cut into chunks
(about four per CPU of the cluster, at most 64 cells each) and each chunk runs `check_cell` on every
cell in one Ray task. The guarantee of the local matrix holds: one bad adapter never stops the scan.

- `check_cell` turns anything a check raises into an `error` row, so a chunk only fails when its
  worker process dies (a segfault in a native reader, the OOM killer, a lost node);
- Ray retries a task whose worker died (`max_retries` times), then the chunk's cells are rerun one per
  task, so only the cell that keeps killing its worker becomes an `error` row
  (`worker process failed: ...`), as `run_matrix`'s isolated rerun does.

Rows come back in adapter × base order, and the `MatrixResult` (executor `ray`, `jobs` = the cluster's
CPUs) is written by the same `write_csv` / HTML report as a local run.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from loraguard.distributed.cluster import import_ray, ray_session
from loraguard.errors import InputError
from loraguard.matrix.run import Cell, MatrixResult, MatrixRow, check_cell, engines_available

__all__ = ["run_matrix_ray"]

CellFn = Callable[[Cell], MatrixRow]


def _run_chunk(cells: Sequence[Cell], fn: CellFn) -> list[MatrixRow]:
    return [fn(c) for c in cells]


def run_matrix_ray(
    paths: Iterable[str | os.PathLike[str]],
    bases: Iterable[str | None] = (),
    *,
    address: str | None = None,
    header_only: bool = False,
    hub_cache: bool | str | os.PathLike[str] = False,
    engines: Iterable[str] = (),
    discover: bool = True,
    max_retries: int = 3,
    cell_fn: CellFn = check_cell,
    num_cpus: int | None = None,
    temp_dir: str | None = None,
) -> MatrixResult:
    """Check every adapter below `paths` against every base on Ray; arguments as `run_matrix`'s.

    `address` as in `ray_session` (None: `RAY_ADDRESS` or a local instance). Adapter and base paths
    must be readable on every node. `cell_fn` replaces `check_cell` (it must be picklable; tests use it
    to inject a cell that kills its worker).
    """
    from loraguard.matrix.discover import discover_adapters

    if max_retries < 0:
        raise InputError(f"max_retries must be at least 0, got {max_retries}")
    import_ray("matrix --ray")
    started = time.perf_counter()
    adapters = discover_adapters(paths, hub_cache=hub_cache) if discover else tuple(os.fspath(p) for p in paths)
    base_list: tuple[str | None, ...] = tuple(os.fspath(b) if b is not None else None for b in bases) or (None,)
    wanted = tuple(dict.fromkeys(engines))
    cells = [Cell(a, b, not header_only, wanted) for a in adapters for b in base_list]
    with ray_session(address, num_cpus=num_cpus, temp_dir=temp_dir) as session:
        cpus = max(1, int(session.cpus))
        rows = _run_cells(cells, cpus, max_retries, cell_fn)
    return MatrixResult(
        rows=tuple(rows),
        adapters=adapters,
        bases=base_list,
        jobs=cpus,
        executor="ray",
        header_only=header_only,
        elapsed_s=time.perf_counter() - started,
        engines=wanted,
        engines_available=bool(wanted) and engines_available(),
        meta={"ray_address": session.address, "ray_startup_s": session.startup_s},
    )


def _run_cells(cells: list[Cell], cpus: int, max_retries: int, fn: CellFn) -> list[MatrixRow]:
    import ray

    if not cells:
        return []
    chunk_task = ray.remote(num_cpus=1, max_retries=max_retries)(_run_chunk)
    size = max(1, min(64, math.ceil(len(cells) / (cpus * 4))))
    chunks = [list(range(i, min(i + size, len(cells)))) for i in range(0, len(cells), size)]
    pending: dict[Any, list[int]] = {chunk_task.remote([cells[i] for i in idx], fn): idx for idx in chunks}
    results: dict[int, MatrixRow] = {}
    failed: list[int] = []
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            idx = pending.pop(ref)
            try:
                results.update(zip(idx, ray.get(ref), strict=True))
            except Exception:  # the worker died max_retries + 1 times: find the cell that kills it
                failed.extend(idx)
    if failed:
        results.update(_isolated([cells[i] for i in sorted(failed)], sorted(failed), max_retries, fn))
    return [results[i] for i in range(len(cells))]


def _isolated(cells: Sequence[Cell], index: Sequence[int], max_retries: int, fn: CellFn) -> dict[int, MatrixRow]:
    """Rerun each cell of a failed chunk alone, so a cell that kills its worker only fails itself."""
    import ray

    one = ray.remote(num_cpus=1, max_retries=max_retries)(_run_chunk)
    refs = [one.remote([cell], fn) for cell in cells]
    out: dict[int, MatrixRow] = {}
    for i, cell, ref in zip(index, cells, refs, strict=True):
        try:
            out[i] = ray.get(ref)[0]
        except Exception as exc:
            text = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            out[i] = MatrixRow(
                cell.adapter,
                cell.base if cell.base is not None else "(claimed)",
                "error",
                error=f"worker process failed: {text}"[:500],
                engines=tuple((e, "n/a") for e in cell.engines),
            )
    return out
