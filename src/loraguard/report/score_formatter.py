"""`ScoreFormatter`: a score run (`FileScoreReport`) as text (per adapter: timing, distribution,
histogram, AUCs, alerts) or JSON (`loraguard.score/1`, the `--metrics-json` document)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loraguard.report.formatter import Formatter, json_text

if TYPE_CHECKING:
    from loraguard.scoring.pipeline import FileScoreReport, RunReport

__all__ = ["ScoreFormatter", "ray_summary"]


class ScoreFormatter(Formatter["FileScoreReport"]):
    command = "loraguard score"

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        """No answer tokens, prefix-cache details, histogram or per-rule AUCs."""

    def text(self, result: FileScoreReport) -> str:
        lines: list[str] = []
        for run in result.runs:
            lines += _run_lines(run, quiet=self.quiet)
        if result.prompts_path is not None:
            lines.append(f"prompts: {result.prompts_path}")
        if result.metrics_path is not None:
            lines.append(f"metrics: {result.metrics_path}")
        return "".join(f"{line}\n" for line in lines)

    def json(self, result: FileScoreReport) -> str:
        from loraguard.monitor.summary import jsonable

        return json_text(jsonable(result.to_dict()), ensure_ascii=False)


def ray_summary(dist: Any) -> str:
    """One line on a Ray run (`DistributedScoreReport`): workers, batches, start-up and scoring time."""
    s = dist.session
    per = ", ".join(f"{w} {n}" for w, n in dist.batches_per_worker.items())
    start = "reused this process's Ray" if s.reused else f"Ray start-up {s.startup_s:.1f}s"
    return (
        f"ray: {dist.workers} worker(s) on {s.address} ({s.cpus:g} CPUs, {s.gpus:g} GPUs), {dist.batches} "
        f"batches ({per}); {start}, scoring {dist.wall_s:.1f}s\n"
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _run_lines(run: RunReport, *, quiet: bool) -> list[str]:
    from loraguard.scoring.metrics import histogram_lines
    from loraguard.scoring.progress import format_duration

    r = run.result
    t = r.timing
    label = f"adapter {run.adapter}" if run.adapter else "base (no adapter)"
    lines = [
        f"{label}: {len(r.row_ids)} rows, method {r.method}, template {r.template}, "
        + (f"{r.dtype}, " if r.dtype else "")
        + f"{format_duration(t.seconds)} ({t.rows_per_second:.1f} rows/s, {t.tokens_per_second:,.0f} tok/s)",
        f"  wrote {run.output}",
    ]
    if r.answers is not None and not quiet:
        lines.append(f"  answer tokens: {r.answers.describe()}")
    if r.answer_mass is not None and not quiet:
        lines.append(f"  mean probability mass on the answer tokens: {float(r.answer_mass.mean()):.4f}")
    if t.prefix_tokens_skipped and not quiet:
        lines.append(
            f"  prefix cache: {t.prefix_tokens_skipped:,} of {t.prompt_tokens:,} prompt tokens "
            f"not recomputed ({100 * t.skipped_share:.1f}%)"
        )
    if r.method == "generate":
        counts = ", ".join(f"{k} {v}" for k, v in r.stage_counts.items())
        lines.append(f"  parser stages: {counts}; parse failures (default used) {100 * r.parse_failure_share:.1f}%")
    s = run.summary
    lines.append(
        f"  distribution: mean {_fmt(s['mean'])}  std {_fmt(s['std'])}  min {_fmt(s['min'])}  "
        f"max {_fmt(s['max'])}  distinct {s['distinct']}"
    )
    if not quiet:
        lines += [f"    {line}" for line in histogram_lines(s["histogram"])]
    if run.auc is not None:
        a = run.auc
        valid = len(a.per_rule) - len(a.skipped_rules)
        lines.append(
            f"  ROC AUC {_fmt(None if a.auc != a.auc else a.auc)}  mean per-rule AUC "
            f"{_fmt(None if a.mean_rule_auc != a.mean_rule_auc else a.mean_rule_auc)} ({valid} rules)"
        )
        if not quiet:
            for rule, value in a.per_rule.items():
                shown = "skipped (one class only)" if rule in a.skipped_rules else f"{value:.4f}"
                lines.append(f"    {shown}  n={a.rule_counts[rule]}  {rule[:70]}")
        elif a.skipped_rules:
            lines.append(f"    {len(a.skipped_rules)} rule(s) skipped: only one class in the labels")
    lines += [f"  ALERT {alert.severity.value} {alert.rule}: {alert.message}" for alert in run.alerts]
    if run.degenerate:
        lines.append(
            "  The model gives (nearly) the same answer for every row: check that the adapter fits this "
            "base (`loraguard check`, `loraguard probe`) and the prompt format it was trained with."
        )
    return lines
