"""Progress reporting (a rich bar on stderr) and the `--time-budget` guard.

Scoring reports work through a `ProgressSink`: `start(rows, units)` once per run (one run per
adapter), then `advance(rows, units)` after every batch. Units are prompt tokens that go through
the model (a shared prefix counts once), a better measure of work than rows because prompt lengths
vary several-fold. A run scored in chunks (`score_chunks`) knows its units only as its chunks are
tokenized: `ChunkedProgress` starts the run once with the units projected from the first chunk and
`revise`s the projection as each further chunk comes.

`TimeBudget` projects the total time from the batches seen so far (the first batch, which carries
one-off warm-up costs, is left out of the rate once a second one is done) and raises
`TimeBudgetExceededError` as soon as the projection is over budget, saying by how much, instead of
letting a 12-hour job run out of time at 95%. Batches run longest first, so early projections
err on the safe side. The clock starts when the budget is created (`LocalExecutor` creates it before
loading the model, so loading counts too).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from loraguard.errors import InputError, TimeBudgetExceededError

__all__ = [
    "ChunkedProgress",
    "CompositeProgress",
    "ProgressSink",
    "RichProgress",
    "TimeBudget",
    "format_duration",
    "parse_duration",
]

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)", re.IGNORECASE)
_UNIT = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


class ProgressSink(Protocol):
    """Receives progress from `score_rows`. May raise to stop scoring (see `TimeBudget`)."""

    def start(self, total_rows: int, total_units: int) -> None: ...

    def advance(self, rows: int, units: int) -> None: ...

    def revise(self, total_units: int) -> None:
        """The run's units, projected again (a run scored in chunks); rows are unchanged."""


class ChunkedProgress:
    """Presents a run scored chunk by chunk to `sink` as one run of `total_rows` rows.

    Each chunk's scorer calls `start(chunk rows, chunk units)`: the first starts the run with the
    units projected to every row from the chunks seen, later ones `revise` that projection."""

    def __init__(self, sink: ProgressSink, total_rows: int) -> None:
        self.sink = sink
        self.total_rows = total_rows
        self._rows = 0
        self._units = 0

    def start(self, total_rows: int, total_units: int) -> None:
        first = self._rows == 0
        self._rows += total_rows
        self._units += total_units
        projected = round(self._units * max(self.total_rows, self._rows) / max(self._rows, 1))
        if first:
            self.sink.start(self.total_rows, projected)
        else:
            self.sink.revise(projected)

    def advance(self, rows: int, units: int) -> None:
        self.sink.advance(rows, units)

    def revise(self, total_units: int) -> None:  # pragma: no cover - not nested
        self.sink.revise(total_units)


def parse_duration(text: str) -> float:
    """`"9h"`, `"90m"`, `"1h30m"`, `"45s"` or `"45"` (seconds) to seconds."""
    stripped = text.strip()
    pos = 0
    total = 0.0
    for match in _DURATION.finditer(stripped):
        if stripped[pos : match.start()].strip():
            break
        total += float(match.group(1)) * _UNIT[match.group(2).lower()]
        pos = match.end()
    if not stripped or stripped[pos:].strip() or total <= 0:
        raise InputError(f"time budget {text!r}: expected a positive duration like 90s, 45m, 9h or 1h30m")
    return total


def format_duration(seconds: float) -> str:
    """`3725` to `1h02m05s`; under a minute with one decimal (`12.3s`)."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else f"{m}m{sec:02d}s"


class TimeBudget:
    """A `ProgressSink` that stops scoring early when the projected total exceeds `seconds`."""

    def __init__(self, seconds: float, *, runs: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.runs = max(1, runs)
        self._clock = clock
        self._t0 = clock()
        self._run = 0
        self._run_units = 0
        self._run_done = 0
        self._rows_done = 0
        self._batches = 0
        self._mark: tuple[float, int] | None = None
        self._units_done = 0
        self._run_t0 = self._t0

    def start(self, total_rows: int, total_units: int) -> None:
        self._run += 1
        self._run_units = total_units
        self._run_done = 0
        self._run_t0 = self._clock()

    def revise(self, total_units: int) -> None:
        self._run_units = total_units

    def advance(self, rows: int, units: int) -> None:
        self._run_done += units
        self._units_done += units
        self._rows_done += rows
        if rows:
            self._batches += 1
        now = self._clock()
        elapsed = now - self._t0
        remaining = (self._run_units - self._run_done) + (self.runs - self._run) * self._run_units
        if self._batches == 1 and rows:
            self._mark = (now, self._units_done)
        if remaining <= 0:
            return  # all done: never throw finished work away
        if self._mark is not None and self._batches >= 2 and self._units_done > self._mark[1]:
            rate = (now - self._mark[0]) / (self._units_done - self._mark[1])
        elif elapsed > self.seconds:  # already over before a second batch: use what there is
            rate = (now - self._run_t0) / max(self._run_done, 1)
        else:
            return
        projected = elapsed + rate * remaining
        if projected > self.seconds:
            over = projected - self.seconds
            runs = f" over {self.runs} adapter runs" if self.runs > 1 else ""
            raise TimeBudgetExceededError(
                f"time budget {format_duration(self.seconds)} would be exceeded by {format_duration(over)}: "
                f"projected {format_duration(projected)}{runs} after {format_duration(elapsed)} and "
                f"{self._rows_done} rows. Stopped early (this run's predictions were not written). "
                "Raise --time-budget, score fewer rows, or speed up (a larger --batch-size, the prefix "
                "cache on, a GPU)"
            )


class CompositeProgress:
    """Forwards to several sinks, in order."""

    def __init__(self, sinks: Sequence[ProgressSink]) -> None:
        self.sinks = tuple(sinks)

    def start(self, total_rows: int, total_units: int) -> None:
        for s in self.sinks:
            s.start(total_rows, total_units)

    def advance(self, rows: int, units: int) -> None:
        for s in self.sinks:
            s.advance(rows, units)

    def revise(self, total_units: int) -> None:
        for s in self.sinks:
            s.revise(total_units)


class RichProgress:
    """A rich progress bar on stderr: rows, rows/s, tokens/s, elapsed and ETA. Use as a context manager.

    Disabled (a no-op) when stderr is not a terminal, unless `force=True`.
    """

    def __init__(self, description: str = "scoring", *, force: bool = False, stream: Any = None) -> None:
        self.description = description
        stream = sys.stderr if stream is None else stream
        self.enabled = force or bool(getattr(stream, "isatty", lambda: False)())
        self._stream = stream
        self._progress: Any = None
        self._task: Any = None
        self._units = 0
        self._t0 = 0.0

    def __enter__(self) -> RichProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[speed]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(file=self._stream),
                transient=False,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def set_description(self, description: str) -> None:
        self.description = description

    def start(self, total_rows: int, total_units: int) -> None:
        self._units = 0
        self._t0 = time.monotonic()
        if self._progress is not None:
            self._task = self._progress.add_task(self.description, total=total_rows, speed="")

    def revise(self, total_units: int) -> None:
        """The bar counts rows: nothing to change."""

    def advance(self, rows: int, units: int) -> None:
        self._units += units
        if self._progress is None or self._task is None:
            return
        task = self._progress.tasks[-1]
        done = task.completed + rows
        dt = max(time.monotonic() - self._t0, 1e-9)
        speed = f"{done / dt:.1f} rows/s {self._units / dt:,.0f} tok/s"
        self._progress.update(self._task, advance=rows, speed=speed)
