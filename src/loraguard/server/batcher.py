"""Micro-batching: requests that arrive together are scored together, on ONE model thread.

    request ─► live queue ─┐                     ┌─► futures resolved (responses)
                           ├─► collector task ─► model thread: group by adapter, set_adapter, score_rows
    shadow ─► bounded deque┘   (asyncio)          └─► on_batch callback (monitors, metrics)

When the model thread is idle, the collector takes the first live job that arrives and keeps
collecting until it has `max_batch` jobs or `max_wait_ms` have passed. When jobs queued up while
a batch ran, the next batch takes them (up to `max_batch`) at once, with no extra wait: they have
already waited, and an idle model is the one thing a busy server cannot afford. The collector
groups the jobs by adapter and hands the groups to the model thread (a one-worker executor: PEFT
switches adapters by mutating the model, so nothing else may run on it at the same time; adapter
loads and unloads go through the same thread). While a batch runs, new requests queue up, so under
load batches fill by themselves.

Shadow jobs never delay a response they belong to and never change it: they wait in a bounded
deque and run only when no live job is waiting (idle capacity). When the deque is full the new
shadow job is dropped and counted, so shadowing can never build an unbounded backlog.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from loraguard.errors import AdapterGone, InputError

__all__ = ["BatchOutcome", "Job", "MicroBatcher", "ModelThread", "ScoreFn"]

T = TypeVar("T")
ScoreFn = Callable[[str, Sequence[Mapping[str, str]]], Any]
"""`score(ref, rows)` → an object with `.probabilities` (one per row); runs on the model thread."""


class ModelThread:
    """The single thread allowed to touch the model."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loraguard-model")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the model thread and await its result."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


@dataclass
class Job:
    """One row to score with one adapter; `future` is None for a shadow job."""

    ref: str
    row: Mapping[str, str]
    future: asyncio.Future[float | None] | None = None
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class BatchOutcome:
    """What one adapter's group of a micro-batch produced (passed to the `on_batch` callback)."""

    ref: str
    shadow: bool
    probabilities: tuple[float | None, ...]
    rules: tuple[str, ...]
    seconds: float


def _run_group(score: ScoreFn, ref: str, jobs: Sequence[Job]) -> list[float | BaseException | None]:
    """Score one adapter's jobs; one row that cannot be scored fails alone.

    When the group's forward pass fails (a row the model refuses, e.g. longer than its context, or
    one the tokenizer or the model chokes on), every job is scored again on its own, so the others
    still get their answers. A row failing alone while others of its group succeed is the row's
    fault: its error becomes an `InputError` (the server answers 422 naming the item). When every
    row fails alone too, the model is at fault and the original errors are kept (500).
    """
    rows = [{**job.row, "row_id": str(i)} for i, job in enumerate(jobs)]
    try:
        result = score(ref, rows)
    except KeyError:
        return [AdapterGone(ref) for _ in jobs]
    except Exception:
        if len(rows) == 1:
            raise
        out: list[float | BaseException | None] = []
        for job in jobs:
            try:
                out.extend(_run_group(score, ref, [job]))
            except Exception as exc:  # kept per item, judged below
                out.append(exc)
        if any(not isinstance(r, BaseException) for r in out):
            out = [_item_fault(r) if isinstance(r, BaseException) else r for r in out]
        return out
    return [float(p) if p == p and abs(p) != float("inf") else None for p in result.probabilities.tolist()]


def _item_fault(exc: BaseException) -> BaseException:
    """A failure of one item whose neighbours were scored: an `InputError` naming what went wrong."""
    if isinstance(exc, InputError | AdapterGone):
        return exc
    return InputError(f"it cannot be scored ({type(exc).__name__}: {str(exc)[:200]})")


class MicroBatcher:
    """Collects jobs into micro-batches and runs them on the model thread (see the module docstring)."""

    def __init__(
        self,
        model_thread: ModelThread,
        score: ScoreFn,
        *,
        max_batch: int = 16,
        max_wait_ms: float = 5.0,
        shadow_queue: int = 1024,
        on_batch: Callable[[BatchOutcome], None] | None = None,
        on_batch_size: Callable[[str, int], None] | None = None,
        on_shadow_drop: Callable[[str], None] | None = None,
    ) -> None:
        if max_batch < 1 or max_wait_ms < 0 or shadow_queue < 0:
            raise InputError("max_batch >= 1, max_wait_ms >= 0 and shadow_queue >= 0 are required")
        self.model_thread, self.score = model_thread, score
        self.max_batch, self.max_wait = max_batch, max_wait_ms / 1000.0
        self.shadow_capacity = shadow_queue
        self.on_batch, self.on_batch_size, self.on_shadow_drop = on_batch, on_batch_size, on_shadow_drop
        self._live: asyncio.Queue[Job] = asyncio.Queue()
        self._shadow: collections.deque[Job] = collections.deque()
        self._work = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.shadow_dropped = 0
        self.batches = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="loraguard-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        while not self._live.empty():
            job = self._live.get_nowait()
            if job.future is not None and not job.future.done():
                job.future.set_exception(AdapterGone("server shutting down"))

    async def submit(self, ref: str, row: Mapping[str, str]) -> float | None:
        """Score `row` with adapter `ref` in the next micro-batch; raises `AdapterGone` or `InputError`."""
        future: asyncio.Future[float | None] = asyncio.get_running_loop().create_future()
        self._live.put_nowait(Job(ref, row, future))
        self._work.set()
        return await future

    def submit_shadow(self, ref: str, row: Mapping[str, str]) -> bool:
        """Queue a shadow job; False (and counted) when the shadow queue is full."""
        if len(self._shadow) >= self.shadow_capacity:
            self.shadow_dropped += 1
            if self.on_shadow_drop is not None:
                self.on_shadow_drop(ref)
            return False
        self._shadow.append(Job(ref, row))
        self._work.set()
        return True

    @property
    def shadow_pending(self) -> int:
        return len(self._shadow)

    async def _collect_live(self, linger: bool) -> list[Job]:
        jobs = [self._live.get_nowait()]
        deadline = time.perf_counter() + (self.max_wait if linger else 0.0)
        while len(jobs) < self.max_batch:
            if not self._live.empty():
                jobs.append(self._live.get_nowait())
                continue
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            try:
                jobs.append(await asyncio.wait_for(self._live.get(), remaining))
            except TimeoutError:
                break
        return jobs

    async def _loop(self) -> None:
        idle = True  # nothing was waiting when the model last became free: let the first job linger
        while True:
            if self._live.empty() and not self._shadow:
                self._work.clear()
                await self._work.wait()
                idle = True
                continue
            if not self._live.empty():
                jobs, shadow = await self._collect_live(linger=idle), False
            else:
                jobs = [self._shadow.popleft() for _ in range(min(self.max_batch, len(self._shadow)))]
                shadow = True
            idle = False
            await self._execute(jobs, shadow)

    async def _execute(self, jobs: list[Job], shadow: bool) -> None:
        groups: dict[str, list[Job]] = {}
        for job in jobs:
            groups.setdefault(job.ref, []).append(job)
        self.batches += 1
        if self.on_batch_size is not None:
            self.on_batch_size("shadow" if shadow else "live", len(jobs))
        for ref, group in groups.items():
            started = time.perf_counter()
            try:
                results = await self.model_thread.run(_run_group, self.score, ref, group)
            except Exception as exc:  # a model failure fails this group's requests, never the server
                results = [exc] * len(group)
            seconds = time.perf_counter() - started
            for job, result in zip(group, results, strict=True):
                if job.future is None or job.future.done():
                    continue
                if isinstance(result, BaseException):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)
            if self.on_batch is not None:
                probs = tuple(r if not isinstance(r, BaseException) else None for r in results)
                scored = [i for i, r in enumerate(results) if not isinstance(r, BaseException)]
                if scored:
                    self.on_batch(
                        BatchOutcome(
                            ref,
                            shadow,
                            tuple(probs[i] for i in scored),
                            tuple(group[i].row["rule"] for i in scored),
                            seconds,
                        )
                    )
