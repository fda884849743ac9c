"""The micro-batcher with a fake scorer (no model): batching, grouping, one thread, shadow isolation."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from loraguard.errors import AdapterGone, InputError
from loraguard.server.batcher import BatchOutcome, MicroBatcher, ModelThread


class FakeScorer:
    """Scores a row as len(body) / 100; records every call (adapter, size, thread) and can be slowed down."""

    def __init__(self, delay: float = 0.0, refuse: str | None = None, known: Sequence[str] = ("a", "b", "s")) -> None:
        self.calls: list[tuple[str, int, str]] = []
        self.delay, self.refuse, self.known = delay, refuse, known
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()

    def __call__(self, ref: str, rows: Sequence[Mapping[str, str]]) -> Any:
        if ref not in self.known:
            raise KeyError(ref)
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self.calls.append((ref, len(rows), threading.current_thread().name))
            if self.refuse is not None and any(r["body"] == self.refuse for r in rows):
                raise InputError("row too long for the context window")
            time.sleep(self.delay)
            return SimpleNamespace(probabilities=np.array([len(r["body"]) / 100 for r in rows]))
        finally:
            with self.lock:
                self.active -= 1


def _row(body: str, rule: str = "r") -> dict[str, str]:
    return {"body": body, "rule": rule}


def _run(coro_fn: Any) -> Any:
    return asyncio.run(coro_fn())


def test_concurrent_requests_are_batched_and_grouped_by_adapter() -> None:
    scorer = FakeScorer(delay=0.01)
    outcomes: list[BatchOutcome] = []

    async def main() -> list[float | None]:
        b = MicroBatcher(ModelThread(), scorer, max_batch=8, max_wait_ms=20, on_batch=outcomes.append)
        b.start()
        jobs = [b.submit("a" if i % 2 else "b", _row("x" * i)) for i in range(16)]
        out = await asyncio.gather(*jobs)
        await b.stop()
        return out

    results = _run(main)
    assert results == [i / 100 for i in range(16)]  # each answer is its own row's, in order
    assert sum(n for _, n, _ in scorer.calls) == 16
    assert max(n for _, n, _ in scorer.calls) >= 4  # really batched (16 items, max 8 per micro-batch)
    assert len(scorer.calls) <= 6
    assert {t for _, _, t in scorer.calls} and all(t.startswith("loraguard-model") for _, _, t in scorer.calls)
    assert scorer.max_active == 1  # never two forward passes at once
    assert {o.ref for o in outcomes} == {"a", "b"} and not any(o.shadow for o in outcomes)


def test_max_batch_one_scores_one_at_a_time() -> None:
    scorer = FakeScorer()

    async def main() -> None:
        b = MicroBatcher(ModelThread(), scorer, max_batch=1, max_wait_ms=50)
        b.start()
        await asyncio.gather(*(b.submit("a", _row("x")) for _ in range(5)))
        await b.stop()

    _run(main)
    assert [n for _, n, _ in scorer.calls] == [1] * 5


def test_a_refused_row_fails_alone_and_unknown_adapters_report_gone() -> None:
    scorer = FakeScorer(refuse="too long")

    async def main() -> list[Any]:
        b = MicroBatcher(ModelThread(), scorer, max_batch=8, max_wait_ms=20)
        b.start()
        out = await asyncio.gather(
            b.submit("a", _row("ok")),
            b.submit("a", _row("too long")),
            b.submit("a", _row("fine")),
            b.submit("zzz", _row("x")),
            return_exceptions=True,
        )
        await b.stop()
        return out

    ok, bad, fine, gone = _run(main)
    assert ok == 0.02 and fine == 0.04
    assert isinstance(bad, InputError) and isinstance(gone, AdapterGone)


def test_shadow_jobs_never_delay_or_change_live_answers_and_overflow_is_counted() -> None:
    scorer = FakeScorer(delay=0.005)
    outcomes: list[BatchOutcome] = []
    dropped: list[str] = []

    async def main() -> tuple[list[float | None], int]:
        b = MicroBatcher(
            ModelThread(),
            scorer,
            max_batch=4,
            max_wait_ms=1,
            shadow_queue=5,
            on_batch=outcomes.append,
            on_shadow_drop=dropped.append,
        )
        b.start()
        busy = asyncio.ensure_future(b.submit("b", _row("busy")))
        while not scorer.calls:  # wait until the model thread is busy with that job
            await asyncio.sleep(0.0005)
        accepted = sum(b.submit_shadow("s", _row("y" * i)) for i in range(8))
        live = await asyncio.gather(*(b.submit("a", _row("x" * i)) for i in range(4)))
        await busy
        for _ in range(400):  # the shadow backlog drains once no live job waits (and its batch is recorded)
            if b.shadow_pending == 0 and sum(len(o.probabilities) for o in outcomes if o.shadow) >= 5:
                break
            await asyncio.sleep(0.01)
        await b.stop()
        return live, accepted

    live, accepted = _run(main)
    assert live == [0.0, 0.01, 0.02, 0.03]
    assert accepted == 5 and dropped == ["s"] * 3
    order = [(o.ref, o.shadow) for o in outcomes]
    # the live jobs went first although the shadow jobs were queued before them
    assert order[:2] == [("b", False), ("a", False)] and all(shadow for _, shadow in order[2:])
    assert sum(len(o.probabilities) for o in outcomes if o.shadow) == 5


def test_jobs_that_queued_during_a_batch_go_next_without_the_linger_wait() -> None:
    """`max_wait_ms` only delays a job that finds the model idle; under load the model never waits."""
    scorer = FakeScorer(delay=0.05)

    async def main() -> tuple[float, float]:
        b = MicroBatcher(ModelThread(), scorer, max_batch=4, max_wait_ms=400)
        b.start()
        t0 = time.perf_counter()
        first = asyncio.gather(*(b.submit("a", _row("x" * i)) for i in range(4)))  # a full batch: no wait
        while not scorer.calls:
            await asyncio.sleep(0.0005)
        queued = asyncio.ensure_future(b.submit("a", _row("late")))  # arrives while the model is busy
        await first
        t_first = time.perf_counter() - t0
        await queued
        t_queued = time.perf_counter() - t0
        await b.stop()
        return t_first, t_queued

    t_first, t_queued = _run(main)
    assert t_first < 0.3  # a full batch never lingers
    assert t_queued < 0.3, f"the queued job waited for the linger window ({t_queued:.3f} s)"
    assert [n for _, n, _ in scorer.calls] == [4, 1]


def test_invalid_settings() -> None:
    with pytest.raises(InputError):
        MicroBatcher(ModelThread(), FakeScorer(), max_batch=0)


class ChokingScorer(FakeScorer):
    """Raises a non-loraguard error (as a tokenizer or the model would) on any batch holding `poison`,
    or on every batch when `broken`."""

    def __init__(self, poison: str = "poison", broken: bool = False) -> None:
        super().__init__()
        self.poison, self.broken = poison, broken

    def __call__(self, ref: str, rows: Sequence[Mapping[str, str]]) -> Any:
        if self.broken or any(r["body"] == self.poison for r in rows):
            self.calls.append((ref, len(rows), threading.current_thread().name))
            raise TypeError("TextEncodeInput must be Union[TextInputSequence, ...]")
        return super().__call__(ref, rows)


def test_an_item_the_model_chokes_on_fails_alone_and_its_batch_mates_are_answered() -> None:
    scorer = ChokingScorer()
    outcomes: list[BatchOutcome] = []

    async def main() -> list[Any]:
        b = MicroBatcher(ModelThread(), scorer, max_batch=8, max_wait_ms=30, on_batch=outcomes.append)
        b.start()
        out = await asyncio.gather(
            *(b.submit("a", _row("poison" if i == 3 else "x" * i)) for i in range(6)), return_exceptions=True
        )
        await b.stop()
        return out

    out = _run(main)
    assert scorer.calls[0][1] == 6  # they really were one micro-batch, which failed whole
    assert [o for i, o in enumerate(out) if i != 3] == [0.0, 0.01, 0.02, 0.04, 0.05]
    assert isinstance(out[3], InputError) and "TypeError" in str(out[3])
    assert sum(len(o.probabilities) for o in outcomes) == 5  # the monitors saw the five answers


def test_a_broken_model_is_not_blamed_on_the_items() -> None:
    scorer = ChokingScorer(broken=True)

    async def main() -> list[Any]:
        b = MicroBatcher(ModelThread(), scorer, max_batch=8, max_wait_ms=30)
        b.start()
        out = await asyncio.gather(*(b.submit("a", _row("x" * i)) for i in range(3)), return_exceptions=True)
        await b.stop()
        return out

    out = _run(main)
    assert all(type(o) is TypeError for o in out)  # not InputError: the server answers 500, not 422
