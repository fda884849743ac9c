"""The matrix's executors on this machine: serial, a thread pool, a process pool.

The check is CPU-bound Python, so threads do not scale (see benchmarks/matrix_throughput.py); worker
processes do. A process that dies under a chunk (a segfault in a native reader, the OOM killer) breaks
its pool, so a cell rerun alone gets a fresh pool of its own.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import threading
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from contextlib import AbstractContextManager
from typing import Literal

from loraguard.errors import InputError
from loraguard.matrix.cell import Cell, CellFn, MatrixRow, run_chunk
from loraguard.matrix.executor import ChunkOutcome, MatrixExecutor, Workers

__all__ = ["ExecutorKind", "ProcessExecutor", "SerialExecutor", "ThreadExecutor", "local_executor"]

ExecutorKind = Literal["auto", "serial", "process", "thread"]


class _LocalExecutor(MatrixExecutor):
    def __init__(self, jobs: int = 1) -> None:
        if jobs < 1:
            raise InputError(f"jobs must be at least 1, got {jobs}")
        self.jobs = jobs

    def start(self) -> AbstractContextManager[Workers]:
        return contextlib.nullcontext(Workers(self.jobs))


class SerialExecutor(_LocalExecutor):
    """Every cell in this thread, one after the other."""

    name = "serial"

    def run_chunks(self, fn: CellFn, chunks: Sequence[Sequence[Cell]]) -> Iterator[tuple[int, ChunkOutcome]]:
        for index, chunk in enumerate(chunks):
            yield index, run_chunk(fn, chunk)


class _PoolExecutor(_LocalExecutor):
    @abstractmethod
    def _pool(self, workers: int) -> Executor:
        """A fresh pool of `workers` workers."""

    def run_chunks(self, fn: CellFn, chunks: Sequence[Sequence[Cell]]) -> Iterator[tuple[int, ChunkOutcome]]:
        if not chunks:
            return
        with self._pool(self.jobs) as pool:
            futures: dict[Future[list[MatrixRow]], int] = {
                pool.submit(run_chunk, fn, chunk): index for index, chunk in enumerate(chunks)
            }
            for future in as_completed(futures):
                outcome: ChunkOutcome
                try:
                    outcome = future.result()
                except Exception as exc:  # a worker died (BrokenProcessPool) or the chunk could not be pickled
                    outcome = exc
                yield futures[future], outcome

    def run_alone(self, fn: CellFn, cells: Sequence[Cell]) -> Iterator[tuple[int, MatrixRow | BaseException]]:
        """Each cell in a fresh pool of one worker: a dead worker breaks the pool it was in."""
        for index, cell in enumerate(cells):
            outcome: MatrixRow | BaseException
            try:
                with self._pool(1) as pool:
                    outcome = pool.submit(fn, cell).result()
            except Exception as exc:
                outcome = exc
            yield index, outcome


class ThreadExecutor(_PoolExecutor):
    """Cells in `jobs` threads."""

    name = "thread"

    def _pool(self, workers: int) -> Executor:
        return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="loraguard-matrix")


class ProcessExecutor(_PoolExecutor):
    """Cells in `jobs` worker processes; the first cell runs here first, to warm the caches (catalog,
    rules) that forked workers inherit."""

    name = "process"
    warm_up = True

    def _pool(self, workers: int) -> Executor:
        return ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context())


_KINDS: dict[str, type[_LocalExecutor]] = {
    "serial": SerialExecutor,
    "process": ProcessExecutor,
    "thread": ThreadExecutor,
}


def local_executor(kind: str, jobs: int, cells: int) -> MatrixExecutor:
    """The executor `kind` names, with `jobs` workers. `auto`: serial for one job or fewer than two cells
    per job (a pool would cost more than it saves), else processes."""
    if kind == "auto":
        kind = "serial" if jobs == 1 or cells < 2 * jobs else "process"
    if kind not in _KINDS:
        raise InputError(f"unknown executor {kind!r}: use auto, serial, process or thread")
    return _KINDS[kind](jobs)


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
        ctx.set_forkserver_preload(["loraguard.checks.checker", "loraguard.matrix.cell"])
    return ctx
