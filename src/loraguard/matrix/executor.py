"""The executor seam of the matrix pipeline: where chunks of cells run.

`loraguard.matrix.run_matrix` plans the cells (adapters × bases), cuts them into chunks, hands the
chunks to a `MatrixExecutor` and reruns, each alone, the cells of any chunk whose worker died, so only
a cell that keeps killing its worker becomes an `error` row. An executor only runs what it is given:

- `loraguard.matrix.local`: `SerialExecutor` (this thread), `ThreadExecutor`, `ProcessExecutor`;
- `loraguard.distributed.RayMatrixExecutor`: Ray tasks on a cluster (the `ray` extra).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar

from loraguard.matrix.cell import Cell, CellFn, MatrixRow

__all__ = ["ChunkOutcome", "MatrixExecutor", "Workers"]

ChunkOutcome = list[MatrixRow] | BaseException
"""A chunk's rows, in cell order, or what its worker died of."""


@dataclass(frozen=True)
class Workers:
    """What a started executor runs on."""

    count: int
    """Cells it runs at once (`MatrixResult.jobs`); chunks are sized from it."""
    meta: Mapping[str, Any] = field(default_factory=dict)
    """Anything worth keeping about them (`MatrixResult.meta`, e.g. the Ray address)."""


class MatrixExecutor(ABC):
    """Runs chunks of matrix cells, in this process or elsewhere."""

    name: ClassVar[str]
    """`MatrixResult.executor`: serial, thread, process, ray."""
    warm_up: ClassVar[bool] = False
    """Run the first cell in this process before the others: forked workers inherit what it cached."""

    def check(self) -> None:  # noqa: B027 - an optional hook: nothing to refuse by default
        """Refuse to run (a missing extra, a bad setting) before any adapter is discovered."""

    @abstractmethod
    def start(self) -> AbstractContextManager[Workers]:
        """Start (or connect to) the workers for one matrix; they stay up inside the `with` block."""

    @abstractmethod
    def run_chunks(self, fn: CellFn, chunks: Sequence[Sequence[Cell]]) -> Iterator[tuple[int, ChunkOutcome]]:
        """Run `fn` on every cell of every chunk, one task per chunk, and yield each chunk's index and its
        outcome as chunks finish (in any order). A worker that dies is an outcome, not an exception."""

    def run_alone(self, fn: CellFn, cells: Sequence[Cell]) -> Iterator[tuple[int, MatrixRow | BaseException]]:
        """Each cell in a task of its own (after its chunk's worker died), yielding its index and its row
        or what killed its worker, so a cell that kills its worker fails only itself."""
        for index, outcome in self.run_chunks(fn, [[cell] for cell in cells]):
            yield index, outcome if isinstance(outcome, BaseException) else outcome[0]
