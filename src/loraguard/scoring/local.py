"""`LocalExecutor`: the score pipeline's executor in this process.

The whole CSV is read (streamed from disk) and checked up front (`load_rows`), the base and every adapter
are loaded once (`load_host`), then each run scores every row in turn (`score_rows`), behind a progress
bar and the `--time-budget` guard (whose clock starts before the CSV is read, so reading and loading
count too: reading stops as soon as the budget is spent). Each run is
handed back as soon as it is done, so the pipeline writes its file before the next run starts.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator

from loraguard.errors import InputError
from loraguard.scoring.data import RowSet, file_format, load_rows
from loraguard.scoring.executor import Scored, ScoredRun, ScoreExecutor, ScoreInput, ScorePlan
from loraguard.scoring.progress import CompositeProgress, ProgressSink, RichProgress, TimeBudget

__all__ = ["LocalExecutor"]


class LocalExecutor(ScoreExecutor):
    """Score in this process: one model, every run after the other."""

    _budget: TimeBudget | None = None
    """The `--time-budget` clock, started by `prepare` (before reading) and used by `execute`."""

    def prepare(self, plan: ScorePlan) -> ScoreInput:
        """Refuse Parquet (read and written on the Ray path only), then read and check every row."""
        data = plan.data
        for label, path in (("input", data), ("output", plan.options.out)):
            if isinstance(path, str | os.PathLike) and file_format(path) == "parquet":
                raise InputError(
                    f"{label} {path}: Parquet is read and written by the Ray path only: add --ray "
                    "(a local Ray instance is fine) or use a .csv file"
                )
        budget = plan.time_budget_s
        self._budget = TimeBudget(budget, runs=len(plan.runs)) if budget is not None else None
        rows = data if isinstance(data, RowSet) else load_rows(data, time_budget_s=budget)
        return ScoreInput(rows=rows, columns=rows.columns)

    def execute(self, plan: ScorePlan, source: ScoreInput) -> Generator[Scored, None, None]:
        from loraguard.scoring.api import score_rows
        from loraguard.scoring.host import load_host

        rows = source.rows
        assert rows is not None  # `prepare` read them
        opts = plan.options
        budget = self._budget
        if budget is None and plan.time_budget_s is not None:
            budget = TimeBudget(plan.time_budget_s, runs=len(plan.runs))
        loaded = load_host(
            plan.base, list(plan.adapters), dtype=opts.dtype, device=opts.device, show_progress=opts.show_progress
        )
        with contextlib.ExitStack() as stack:
            bar = stack.enter_context(RichProgress(force=False)) if opts.show_progress else None
            sinks: list[ProgressSink] = [s for s in (bar, budget) if s is not None]
            for run in plan.runs:
                if bar is not None:
                    bar.set_description(f"scoring {run.name or 'base'}")
                with loaded.activate(run.name):
                    result = score_rows(
                        loaded.model,
                        loaded.tokenizer,
                        rows,
                        template=opts.template,
                        method=opts.method,
                        batch_size=opts.batch_size,
                        prefix_cache=opts.prefix_cache,
                        answers=plan.answers,
                        max_new_tokens=opts.max_new_tokens,
                        progress=CompositeProgress(sinks) if sinks else None,
                    )
                yield Scored(rows=rows, runs=(ScoredRun(result),))
