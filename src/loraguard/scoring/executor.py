"""The executor seam of the score pipeline: what an executor is given and what it hands back.

`loraguard.scoring.pipeline.score_file` runs three steps. It *plans* (checks every option and output
and names the runs: a `ScorePlan`), lets a `ScoreExecutor` *prepare* (what that executor refuses, the
input read as far as it reads it up front, the model paths) and *execute* (score every row with every
run), then *finishes* (non-finite check, prediction files, AUCs, monitor alerts, prompts dump, metrics
JSON). An executor writes nothing and judges nothing; it only scores. Two implement it:

- `loraguard.scoring.local.LocalExecutor`: this process, the model loaded once, one run after the other;
- `loraguard.distributed.RayExecutor`: Ray Data and an actor pool (the `ray` extra).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from loraguard.monitor import Monitor
from loraguard.scoring.api import PromptSink, ScoreResult
from loraguard.scoring.data import RowSet
from loraguard.scoring.options import ScoreOptions

__all__ = ["PlannedRun", "ScoreExecutor", "ScoreInput", "ScorePlan", "Scored", "ScoredRows", "ScoredRun"]


@dataclass(frozen=True)
class PlannedRun:
    """One scoring run: the bare base (`name is None`) or one adapter, and the file it goes to."""

    name: str | None
    adapter: str | None
    """The adapter as given (a folder or a Hub id); None for the bare base."""
    output: Path


@dataclass(frozen=True)
class ScorePlan:
    """A checked request: every option and output is valid, the runs are named. Executors read it."""

    data: str | Path | RowSet
    base: str | Path
    adapters: tuple[str | Path, ...]
    runs: tuple[PlannedRun, ...]
    answers: tuple[str, str]
    """The answer words, parsed from `options.answers`."""
    time_budget_s: float | None
    options: ScoreOptions
    log: Callable[[str], None]
    """Where warnings go (the CLI: stderr)."""

    @property
    def names(self) -> tuple[str | None, ...]:
        return tuple(r.name for r in self.runs)


@dataclass(frozen=True)
class ScoreInput:
    """The input as an executor read it before scoring."""

    rows: ScoredRows | None = None
    """Every row, checked (the local executor: a `RowIndex` of a file, whose texts are read again a chunk
    at a time, or the `RowSet` given); None when the rows are read where they are scored (Ray: the
    workers read them, so their warnings are known only afterwards)."""
    columns: tuple[str, ...] = ()
    """The input's column names, checked like `load_rows` checks a header."""


class ScoredRows(Protocol):
    """The rows an executor scored, as the pipeline needs them afterwards (a `RowSet` is one)."""

    @property
    def source(self) -> str: ...

    @property
    def row_ids(self) -> tuple[str, ...]: ...

    @property
    def rules(self) -> tuple[str, ...]: ...

    @property
    def labels(self) -> npt.NDArray[np.int8] | None: ...

    @property
    def warnings(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class ScoredRun:
    """One run's scores, and the monitors of the batches it was scored in when they were watched apart."""

    result: ScoreResult
    monitors: tuple[Monitor, ...] = ()
    """Monitors over disjoint batches of the rows (Ray: one per batch, retries included), merged by the
    pipeline; empty: the pipeline watches `result` whole."""


@dataclass(frozen=True)
class Scored:
    """Runs an executor finished together, over every row of the input in input order. The pipeline
    checks all of them before it writes any."""

    rows: ScoredRows
    runs: tuple[ScoredRun, ...]
    """In plan order, continuing where the previous `Scored` stopped."""
    execution: object | None = None
    """How the executor ran (e.g. `loraguard.distributed.RayExecution`), kept as `FileScoreReport.execution`."""


class ScoreExecutor(ABC):
    """Scores the rows of a `ScorePlan` with each of its runs; writes nothing."""

    @abstractmethod
    def prepare(self, plan: ScorePlan) -> ScoreInput:
        """Everything this executor checks before it starts: what it refuses, the input (as far as it
        reads it up front) and the model paths. Raises `LoraguardError`s; loads no model."""

    @abstractmethod
    def execute(
        self, plan: ScorePlan, source: ScoreInput, prompts: PromptSink | None = None
    ) -> Generator[Scored, None, None]:
        """Score, yielding the runs as they finish (one `Scored` per group of runs finished together).

        The pipeline writes a group's files before asking for the next, so a run that is done is kept
        even when a later one fails (e.g. on `--time-budget`). `prompts` (`--dump-prompts`) is given
        every row's prompt and token ids once, in input order, with the answer tokens read."""
