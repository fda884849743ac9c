"""`score_file`: CSV in, prediction file(s) out; the `loraguard score` command is a thin shell over it."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from loraguard.errors import InputError
from loraguard.monitor import Alert, evaluate, summarize
from loraguard.scoring.answers import parse_answers_option
from loraguard.scoring.api import METHODS, ScoreResult, score_rows
from loraguard.scoring.data import RowSet, load_rows
from loraguard.scoring.host import adapter_names, load_host
from loraguard.scoring.metrics import AucReport, auc_report, run_summary
from loraguard.scoring.output import (
    check_outputs,
    dump_prompts,
    prediction_paths,
    write_json,
    write_predictions,
)
from loraguard.scoring.progress import (
    CompositeProgress,
    ProgressSink,
    RichProgress,
    TimeBudget,
    parse_duration,
)
from loraguard.scoring.prompts import get_template

__all__ = ["FileScoreReport", "RunReport", "check_score_args", "score_file"]

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
    """Every monitor alert on these predictions (default policy)."""

    def to_dict(self) -> dict[str, Any]:
        r = self.result
        return {
            "adapter": self.adapter,
            "adapter_path": self.adapter_path,
            "output": str(self.output),
            "method": r.method,
            "template": r.prompts.template,
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


@dataclass(frozen=True)
class FileScoreReport:
    """Everything `score_file` did: the runs, the files it wrote and the data warnings."""

    data: str
    base: str
    runs: tuple[RunReport, ...]
    warnings: tuple[str, ...]
    prompts_path: Path | None
    metrics_path: Path | None

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


def check_score_args(
    adapters: Sequence[str | Path],
    *,
    out: str | Path,
    overwrite: bool,
    template: str | Path,
    method: str,
    answers: str | Sequence[str],
    batch_size: int,
    extra_outputs: Sequence[str | Path | None] = (),
) -> tuple[tuple[str, str], list[str | None], list[Path]]:
    """What every scoring path checks before loading anything: template, method, batch size and answer
    words, and that no output exists (unless `overwrite`). Returns the answer words, the run names (the
    adapters', or `[None]` for the bare base) and one prediction path per run."""
    get_template(template)
    if method not in METHODS:
        raise InputError(f"method {method!r}: expected one of {', '.join(METHODS)}")
    if batch_size < 1:
        raise InputError(f"batch size {batch_size}: must be at least 1")
    answer_words = parse_answers_option(answers)
    names: list[str | None] = list(adapter_names(adapters)) if adapters else [None]
    paths = prediction_paths(out, names)
    check_outputs([*paths, *(Path(p) for p in extra_outputs if p is not None)], overwrite=overwrite)
    return answer_words, names, paths


def score_file(
    data: str | Path | RowSet,
    base: str | Path,
    adapters: Sequence[str | Path] = (),
    *,
    out: str | Path,
    overwrite: bool = False,
    template: str | Path = "chat",
    method: str = "logits",
    answers: str | Sequence[str] = ("Yes", "No"),
    batch_size: int = 8,
    prefix_cache: bool = True,
    max_new_tokens: int = 10,
    dtype: str = "auto",
    device: str = "auto",
    dump_prompts_to: str | Path | None = None,
    metrics_json: str | Path | None = None,
    time_budget: float | str | None = None,
    show_progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> FileScoreReport:
    """Score a Jigsaw CSV with the base alone, or with each adapter in turn, and write the predictions.

    Every input and output is checked before the model is loaded. One prediction file per run
    (`out`, or `out`'s `stem.<adapter>.suffix` with several adapters); `dump_prompts_to` (JSONL) and
    `metrics_json` are optional. `time_budget` (seconds or `"9h"`) stops early when the projected
    total would exceed it (`TimeBudgetExceededError`).
    """
    say = log or (lambda _msg: None)
    rows = data if isinstance(data, RowSet) else load_rows(data)
    for warning in rows.warnings:
        say(f"Warning: {rows.source}: {warning}")
    answer_words, names, paths = check_score_args(
        adapters,
        out=out,
        overwrite=overwrite,
        template=template,
        method=method,
        answers=answers,
        batch_size=batch_size,
        extra_outputs=(dump_prompts_to, metrics_json),
    )
    budget_s = parse_duration(time_budget) if isinstance(time_budget, str) else time_budget
    if budget_s is not None and budget_s <= 0:
        raise InputError(f"time budget {time_budget!r}: must be positive")

    budget = TimeBudget(budget_s, runs=len(names)) if budget_s is not None else None
    loaded = load_host(base, adapters, dtype=dtype, device=device, show_progress=show_progress)
    runs: list[RunReport] = []
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(RichProgress(force=False)) if show_progress else None
        sinks: list[ProgressSink] = [s for s in (bar, budget) if s is not None]
        adapter_paths: list[str | None] = [str(a) for a in adapters] or [None]
        for name, adapter_path, path in zip(names, adapter_paths, paths, strict=True):
            if bar is not None:
                bar.set_description(f"scoring {name or 'base'}")
            with loaded.activate(name):
                result = score_rows(
                    loaded.model,
                    loaded.tokenizer,
                    rows,
                    template=template,
                    method=method,
                    batch_size=batch_size,
                    prefix_cache=prefix_cache,
                    answers=answer_words,
                    max_new_tokens=max_new_tokens,
                    progress=CompositeProgress(sinks) if sinks else None,
                )
            for note in result.notes:
                say(f"Warning: {name or 'base'}: {note}")
            bad = int((~np.isfinite(result.probabilities)).sum())
            if bad:
                raise InputError(
                    f"{bad} of {len(result.row_ids)} rows got a non-finite probability with "
                    f"{name or 'the bare base'} (NaN or infinite logits, e.g. a float16 overflow): nothing "
                    f"was written to {path}. Try --dtype float32"
                )
            write_predictions(path, result.row_ids, result.probabilities, overwrite=overwrite)
            auc = None
            if rows.labels is not None:
                auc = auc_report(rows.labels, result.probabilities, rows.rules)
            summary = summarize(result.probabilities, parsed=result.parsed)
            alerts = evaluate(summary)
            degenerate = any(a.rule == "degenerate" for a in alerts)
            runs.append(
                RunReport(
                    adapter=name,
                    adapter_path=adapter_path,
                    output=path,
                    result=result,
                    summary=run_summary(summary, degenerate=degenerate),
                    degenerate=degenerate,
                    auc=auc,
                    alerts=alerts,
                )
            )
    prompts_path = metrics_path = None
    if dump_prompts_to is not None:
        first = runs[0].result
        answers_ids = first.answers
        prompts_path = dump_prompts(
            dump_prompts_to,
            first.prompts.row_ids,
            first.prompts.prompts,
            first.prompts.input_ids,
            answers_ids.positive_ids if answers_ids else (),
            answers_ids.negative_ids if answers_ids else (),
            add_special_tokens=first.prompts.add_special_tokens,
            overwrite=overwrite,
        )
    report = FileScoreReport(
        data=rows.source,
        base=str(base),
        runs=tuple(runs),
        warnings=rows.warnings,
        prompts_path=prompts_path,
        metrics_path=None,
    )
    if metrics_json is not None:
        metrics_path = write_json(metrics_json, report.to_dict(), overwrite=overwrite)
        report = dataclasses.replace(report, metrics_path=metrics_path)
    return report
