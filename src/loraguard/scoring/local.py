"""`LocalExecutor`: the score pipeline's executor in this process.

A CSV is checked whole up front (`index_rows`: every row validated, only row_ids, rules and labels
kept), the base and every adapter are loaded once (`load_host`), every prompt is checked against the
context window (`check_context_fits`), then each run scores the rows a chunk at a time
(`score_chunks` over `iter_row_chunks`, which reads the file again and refuses one that changed), so
memory holds one chunk's texts and token ids whatever the file's size (a pipe, which can be read only
once, is held whole instead). A progress bar and the
`--time-budget` guard watch the runs; the budget's clock starts before the CSV is read, so reading
and loading count too (reading stops as soon as the budget is spent). Each run is handed back as
soon as it is done, so the pipeline writes its file before the next run starts.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator, Iterator

from loraguard.errors import InputError
from loraguard.scoring.api import PromptSink
from loraguard.scoring.data import (
    RowIndex,
    RowSet,
    file_format,
    index_rows,
    iter_row_chunks,
    load_rows,
    rereadable,
)
from loraguard.scoring.executor import Scored, ScoredRun, ScoreExecutor, ScoreInput, ScorePlan
from loraguard.scoring.progress import CompositeProgress, ProgressSink, RichProgress, TimeBudget

__all__ = ["CHUNK_ROWS", "LocalExecutor"]

CHUNK_ROWS = 512
"""Rows whose texts, prompts and token ids are held at a time (~15-30 MB for Jigsaw rows). Big enough
that each chunk's shared prompt prefixes are computed once for hundreds of rows."""


class LocalExecutor(ScoreExecutor):
    """Score in this process: one model, every run after the other, `chunk_rows` rows at a time."""

    _budget: TimeBudget | None = None
    """The `--time-budget` clock, started by `prepare` (before reading) and used by `execute`."""

    def __init__(self, chunk_rows: int = CHUNK_ROWS) -> None:
        if chunk_rows < 1:
            raise InputError(f"chunk rows {chunk_rows}: must be at least 1")
        self.chunk_rows = chunk_rows

    def prepare(self, plan: ScorePlan) -> ScoreInput:
        """Refuse Parquet (read and written on the Ray path only), then check every row."""
        data = plan.data
        for label, path in (("input", data), ("output", plan.options.out)):
            if isinstance(path, str | os.PathLike) and file_format(path) == "parquet":
                raise InputError(
                    f"{label} {path}: Parquet is read and written by the Ray path only: add --ray "
                    "(a local Ray instance is fine) or use a .csv file"
                )
        budget = plan.time_budget_s
        self._budget = TimeBudget(budget, runs=len(plan.runs)) if budget is not None else None
        rows: RowSet | RowIndex
        if isinstance(data, RowSet):
            rows = data
        elif rereadable(data):
            rows = index_rows(data, time_budget_s=budget)
        else:  # a pipe (`<(zcat train.csv.gz)`) can be read only once: hold its rows, as a RowSet
            rows = load_rows(data, time_budget_s=budget)
        return ScoreInput(rows=rows, columns=rows.columns)

    def _chunks(self, plan: ScorePlan, rows: RowSet | RowIndex) -> Iterator[RowSet]:
        if isinstance(rows, RowSet):
            return rows.chunks(self.chunk_rows)
        assert not isinstance(plan.data, RowSet)
        return iter_row_chunks(plan.data, rows, self.chunk_rows)

    def execute(
        self, plan: ScorePlan, source: ScoreInput, prompts: PromptSink | None = None
    ) -> Generator[Scored, None, None]:
        from loraguard.scoring.api import check_context_fits, score_chunks
        from loraguard.scoring.host import load_host

        rows = source.rows
        assert isinstance(rows, RowSet | RowIndex)  # `prepare` read them
        opts = plan.options
        budget = self._budget
        if budget is None and plan.time_budget_s is not None:
            budget = TimeBudget(plan.time_budget_s, runs=len(plan.runs))
        loaded = load_host(
            plan.base, list(plan.adapters), dtype=opts.dtype, device=opts.device, show_progress=opts.show_progress
        )
        check_context_fits(
            loaded.model,
            loaded.tokenizer,
            self._chunks(plan, rows),
            template=opts.template,
            method=opts.method,
            max_new_tokens=opts.max_new_tokens,
        )
        with contextlib.ExitStack() as stack:
            bar = stack.enter_context(RichProgress(force=False)) if opts.show_progress else None
            sinks: list[ProgressSink] = [s for s in (bar, budget) if s is not None]
            for index, run in enumerate(plan.runs):
                if bar is not None:
                    bar.set_description(f"scoring {run.name or 'base'}")
                with loaded.activate(run.name):
                    result = score_chunks(
                        loaded.model,
                        loaded.tokenizer,
                        self._chunks(plan, rows),
                        total_rows=len(rows),
                        template=opts.template,
                        method=opts.method,
                        batch_size=opts.batch_size,
                        prefix_cache=opts.prefix_cache,
                        answers=plan.answers,
                        max_new_tokens=opts.max_new_tokens,
                        progress=CompositeProgress(sinks) if sinks else None,
                        prompts_to=prompts if index == 0 else None,
                    )
                yield Scored(rows=rows, runs=(ScoredRun(result),))
