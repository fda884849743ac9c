"""`RayMatrixExecutor`: the matrix pipeline's executor on a Ray cluster, one Ray task per chunk of cells.

`loraguard.matrix.run_matrix(paths, bases, executor=RayMatrixExecutor(address=...))` discovers the
adapters on the driver, cuts the cells into chunks (about four per CPU of the cluster) and finishes
the result exactly as a local run does; only the chunks run here, each as a Ray task. The guarantee of
the local matrix holds: one bad adapter never stops the scan.

- `check_cell` turns anything a check raises into an `error` row, so a task only fails when its worker
  process dies (a segfault in a native reader, the OOM killer, a lost node);
- Ray retries a task whose worker died (`max_retries` times); past that the pipeline reruns the chunk's
  cells one per task, so only the cell that keeps killing its worker becomes an `error` row.

The `MatrixResult` has executor `ray` and `jobs` = the cluster's CPUs, with the address and start-up
time in `meta`. Adapter and base paths must be readable on every node.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from loraguard.distributed.cluster import import_ray, ray_session
from loraguard.errors import InputError
from loraguard.matrix.cell import Cell, CellFn, MatrixRow, run_chunk
from loraguard.matrix.executor import ChunkOutcome, MatrixExecutor, Workers

__all__ = ["RayMatrixExecutor"]


@dataclass(frozen=True)
class RayMatrixExecutor(MatrixExecutor):
    """Chunks of cells as Ray tasks. `address` as in `ray_session` (None: `RAY_ADDRESS` or a local
    instance, with `num_cpus` and `temp_dir`)."""

    name = "ray"

    address: str | None = None
    max_retries: int = 3
    """Retries of a task whose worker died, before its cells are rerun alone (and then before a cell fails)."""
    num_cpus: int | None = None
    temp_dir: str | None = None

    def check(self) -> None:
        if self.max_retries < 0:
            raise InputError(f"max_retries must be at least 0, got {self.max_retries}")
        import_ray("matrix --ray")

    @contextmanager
    def start(self) -> Iterator[Workers]:
        with ray_session(self.address, num_cpus=self.num_cpus, temp_dir=self.temp_dir) as session:
            yield Workers(
                max(1, int(session.cpus)), {"ray_address": session.address, "ray_startup_s": session.startup_s}
            )

    def run_chunks(self, fn: CellFn, chunks: Sequence[Sequence[Cell]]) -> Iterator[tuple[int, ChunkOutcome]]:
        import ray

        task = ray.remote(num_cpus=1, max_retries=self.max_retries)(run_chunk)
        pending: dict[Any, int] = {task.remote(fn, list(chunk)): index for index, chunk in enumerate(chunks)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                outcome: ChunkOutcome
                try:
                    rows: list[MatrixRow] = ray.get(ref)
                    outcome = rows
                except Exception as exc:  # the worker died max_retries + 1 times
                    outcome = exc
                yield pending.pop(ref), outcome
