"""`score_file`: the score pipeline, CSV (or Parquet) in, prediction file(s) out, whatever executes it.

Three steps, the middle one delegated to an executor (`loraguard.scoring.executor.ScoreExecutor`):

1. plan (`plan_score`): the template, method, batch size, answer words and time budget are checked and
   every output is refused up front if it exists (unless `overwrite`), before any model is loaded; the
   runs are named (the bare base, or one per adapter) with one prediction path each;
2. execute: the executor prepares (what it refuses, the input, the model paths) and scores, handing
   the runs back as they finish (`LocalExecutor`: this process; `loraguard.distributed.RayExecutor`);
3. finish (`finish_score`): for every group of runs handed back, the data and run warnings are said,
   every probability is checked finite before any file of the group is written, then each run gets its
   prediction file (atomic, CSV or Parquet by suffix), AUCs (with labels), the monitor's alerts (the
   `degenerate` rule among them), an `answer-mass` warning when the answer tokens get under 1% of the
   probability, and its distribution summary. The prompts dump (`--dump-prompts`) is written while the
   executor scores (a `PromptDump` it is handed) and appears, whole, once every run is finished; then
   the metrics JSON. The `loraguard score` command prints the `FileScoreReport` this returns.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from loraguard.display import renderable
from loraguard.errors import InputError
from loraguard.findings import Severity
from loraguard.monitor import Alert, Monitor, evaluate, summarize
from loraguard.scoring.answers import LOW_ANSWER_MASS, low_answer_mass, parse_answers_option
from loraguard.scoring.api import METHODS, ScoreResult
from loraguard.scoring.data import RowSet
from loraguard.scoring.executor import PlannedRun, Scored, ScoredRows, ScoredRun, ScoreExecutor, ScorePlan
from loraguard.scoring.metrics import AucReport, auc_report, run_summary
from loraguard.scoring.options import ScoreOptions
from loraguard.scoring.output import PromptDump, check_outputs, prediction_paths, write_json, write_predictions
from loraguard.scoring.prompts import get_template

__all__ = ["SCHEMA", "FileScoreReport", "RunReport", "finish_score", "merge_monitors", "plan_score", "score_file"]

SCHEMA = "loraguard.score/1"


@dataclass(frozen=True)
class RunReport:
    """One scoring run: the bare base (`adapter is None`) or one adapter."""

    adapter: str | None
    adapter_path: str | None
    output: Path
    result: ScoreResult
    summary: dict[str, Any]
    degenerate: bool
    """The monitor's `degenerate` rule fired (the same rule `loraguard monitor` applies)."""
    auc: AucReport | None
    alerts: tuple[Alert, ...] = ()
    """Every monitor alert on these predictions (default policy), then the `answer-mass` warning when the
    model puts under 1% of its probability on the answer tokens (logits method)."""

    def to_dict(self) -> dict[str, Any]:
        r = self.result
        return {
            "adapter": self.adapter,
            "adapter_path": self.adapter_path,
            "output": str(self.output),
            "method": r.method,
            "template": r.template,
            "dtype": r.dtype or None,
            "rows": len(r.row_ids),
            "summary": self.summary,
            "degenerate": self.degenerate,
            "alerts": [a.to_dict() for a in self.alerts],
            "parsed_share": float(r.parsed.mean()) if r.parsed.size else None,
            "stage_counts": dict(r.stage_counts),
            "answer_tokens": None
            if r.answers is None
            else {
                "positive": list(r.answers.positive_variants),
                "positive_ids": list(r.answers.positive_ids),
                "negative": list(r.answers.negative_variants),
                "negative_ids": list(r.answers.negative_ids),
            },
            "mean_answer_mass": None if r.answer_mass is None else float(r.answer_mass.mean()),
            "metrics": None if self.auc is None else self.auc.to_dict(),
            "timing": r.timing.to_dict(),
            "notes": list(r.notes),
        }


@renderable
@dataclass(frozen=True)
class FileScoreReport:
    """Everything `score_file` did: the runs, the files it wrote and the data warnings."""

    data: str
    base: str
    runs: tuple[RunReport, ...]
    warnings: tuple[str, ...]
    prompts_path: Path | None
    metrics_path: Path | None
    rules: tuple[str, ...] = ()
    """Each row's rule, in input order (for reports grouped by rule)."""
    labels: npt.NDArray[np.int8] | None = None
    """0/1 per row when the input has labels."""
    execution: object | None = None
    """How the executor ran, when it says (`loraguard.distributed.RayExecution`); None in this process."""

    @property
    def any_degenerate(self) -> bool:
        return any(r.degenerate for r in self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "data": self.data,
            "base": self.base,
            "warnings": list(self.warnings),
            "runs": [r.to_dict() for r in self.runs],
        }


def score_file(
    data: str | Path | RowSet,
    base: str | Path,
    adapters: Sequence[str | Path] = (),
    options: ScoreOptions | None = None,
    *,
    executor: ScoreExecutor | None = None,
    log: Callable[[str], None] | None = None,
    **fields: Any,
) -> FileScoreReport:
    """Score `data` with the base alone, or with each adapter in turn, and write the predictions.

    `options` (or `ScoreOptions`' fields as keywords: `score_file(data, base, out="pred.csv")`; given
    both, the keywords replace the options' fields) say how; `executor` where (default: this process,
    `LocalExecutor`). `log` receives the warnings. One prediction file per run (`out`, or `out`'s
    `stem.<adapter>.suffix` with several adapters). Every option and output is checked before the
    executor starts; see the module docstring for the rest.
    """
    from loraguard.scoring.local import LocalExecutor

    if options is None:
        options = ScoreOptions(**fields)
    elif fields:
        options = dataclasses.replace(options, **fields)
    plan = plan_score(data, base, adapters, options, log=log)
    runner = executor if executor is not None else LocalExecutor()
    source = runner.prepare(plan)
    if source.rows is not None:  # read up front: say what is odd in the data before hours of scoring
        _say_data_warnings(source.rows, plan.log)
    dump_to = options.dump_prompts_to
    with contextlib.ExitStack() as stack:
        dump = None if dump_to is None else stack.enter_context(PromptDump.open(dump_to, overwrite=options.overwrite))
        scored = stack.enter_context(contextlib.closing(runner.execute(plan, source, prompts=dump)))
        report = finish_score(plan, scored, warned=source.rows is not None)
    if dump is not None:  # in place now that every run is finished
        report = dataclasses.replace(report, prompts_path=dump.path)
    if options.metrics_json is not None:
        metrics_path = write_json(options.metrics_json, report.to_dict(), overwrite=options.overwrite)
        report = dataclasses.replace(report, metrics_path=metrics_path)
    return report


def plan_score(
    data: str | Path | RowSet,
    base: str | Path,
    adapters: Sequence[str | Path],
    options: ScoreOptions,
    *,
    log: Callable[[str], None] | None = None,
) -> ScorePlan:
    """Check every option and output (before any model is loaded) and name the runs."""
    from loraguard.scoring.host import adapter_names

    get_template(options.template)
    if options.method not in METHODS:
        raise InputError(f"method {options.method!r}: expected one of {', '.join(METHODS)}")
    if options.batch_size < 1:
        raise InputError(f"batch size {options.batch_size}: must be at least 1")
    answer_words = parse_answers_option(options.answers)
    names: list[str | None] = list(adapter_names(adapters)) if adapters else [None]
    paths = prediction_paths(options.out, names)
    check_outputs([*paths, *options.extra_outputs()], overwrite=options.overwrite)
    budget = options.time_budget_seconds()
    given: list[str | None] = [str(a) for a in adapters] or [None]
    return ScorePlan(
        data=data,
        base=base,
        adapters=tuple(adapters),
        runs=tuple(PlannedRun(n, a, p) for n, a, p in zip(names, given, paths, strict=True)),
        answers=answer_words,
        time_budget_s=budget,
        options=options,
        log=log or (lambda _msg: None),
    )


def finish_score(plan: ScorePlan, scored: Iterable[Scored], *, warned: bool = False) -> FileScoreReport:
    """Write and judge what the executor scored (see the module docstring); `warned`: the data
    warnings were said already. The prompts dump and the metrics JSON are `score_file`'s."""
    opts, say = plan.options, plan.log
    runs: list[RunReport] = []
    rows: ScoredRows | None = None
    execution: object | None = None
    for group in scored:
        if rows is None:
            rows = group.rows
            if not warned:
                _say_data_warnings(rows, say)
        pairs = list(zip(plan.runs[len(runs) : len(runs) + len(group.runs)], group.runs, strict=True))
        for run, done in pairs:
            for note in done.result.notes:
                say(f"Warning: {run.name or 'base'}: {note}")
        for run, done in pairs:  # every run of the group, before any file is written
            _check_finite(run, done.result)
        runs.extend(_finish_run(run, done, rows, overwrite=opts.overwrite) for run, done in pairs)
        execution = group.execution if group.execution is not None else execution
    if rows is None or len(runs) != len(plan.runs):  # pragma: no cover - an executor's bug, not the user's
        raise RuntimeError(f"the executor scored {len(runs)} of {len(plan.runs)} runs")
    report = FileScoreReport(
        data=rows.source,
        base=str(plan.base),
        runs=tuple(runs),
        warnings=rows.warnings,
        prompts_path=None,
        metrics_path=None,
        rules=rows.rules,
        labels=rows.labels,
        execution=execution,
    )
    return report


def merge_monitors(monitors: Iterable[Monitor]) -> Monitor:
    """Monitors of disjoint batches folded into one (`Monitor.merge`): the whole run's monitor."""
    total = Monitor()
    for monitor in monitors:
        total.merge(monitor)
    return total


def _say_data_warnings(rows: ScoredRows, say: Callable[[str], None]) -> None:
    for warning in rows.warnings:
        say(f"Warning: {rows.source}: {warning}")


ANSWER_MASS_RULE = "answer-mass"
"""The score alert (a warning) for answer words the model ignores (`probe` reports the same as LG608)."""


def answer_mass_alert(result: ScoreResult) -> Alert | None:
    """A warning when the logits method's mean mass on the answer tokens is below `LOW_ANSWER_MASS` (1%)."""
    mass = low_answer_mass(result.answer_mass)
    if mass is None:
        return None
    words = "/".join(w for w in (result.answers.positive, result.answers.negative)) if result.answers else "the answer"
    return Alert(
        ANSWER_MASS_RULE,
        Severity.WARNING,
        f"the answer tokens ({words}) get {mass:.2%} of the probability mass on average (below "
        f"{LOW_ANSWER_MASS:.0%}): the model is not answering with these words, so P(Yes) compares two tokens it "
        "barely considers; check the answer words (--answers) and the prompt template (--template)",
        {"mean_answer_mass": mass, "below": LOW_ANSWER_MASS},
    )


def _check_finite(run: PlannedRun, result: ScoreResult) -> None:
    bad = int((~np.isfinite(result.probabilities)).sum())
    if bad:
        raise InputError(
            f"{bad} of {len(result.row_ids)} rows got a non-finite probability with {run.name or 'the bare base'} "
            f"(NaN or infinite logits, e.g. a float16 overflow): nothing was written to {run.output}. "
            "Try --dtype float32"
        )


def _finish_run(run: PlannedRun, done: ScoredRun, rows: ScoredRows, *, overwrite: bool) -> RunReport:
    """Write one run's predictions and judge them: AUCs, the monitor's alerts, the distribution summary."""
    result = done.result
    write_predictions(run.output, result.row_ids, result.probabilities, overwrite=overwrite)
    auc = auc_report(rows.labels, result.probabilities, rows.rules) if rows.labels is not None else None
    summary = (
        merge_monitors(done.monitors).summary()
        if done.monitors
        else summarize(result.probabilities, parsed=result.parsed)
    )
    alerts = evaluate(summary)
    degenerate = any(a.rule == "degenerate" for a in alerts)
    ignored = answer_mass_alert(result)
    if ignored is not None:
        alerts = (*alerts, ignored)
    return RunReport(
        adapter=run.name,
        adapter_path=run.adapter,
        output=run.output,
        result=result,
        summary=run_summary(summary, degenerate=degenerate),
        degenerate=degenerate,
        auc=auc,
        alerts=alerts,
    )
