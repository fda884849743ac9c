"""`loraguard score`: probabilities for a Jigsaw CSV from a base model, with or without LoRA adapters.

A thin shell over `loraguard.scoring.score_file`. Exit codes: 0 done, 1 degenerate predictions
with `--fail-on-degenerate`, 2 bad input or `--time-budget` exceeded (raised as `LoraguardError`
and printed by `main()`).
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:  # the CLI imports every command at start-up: keep torch-side modules out
    from loraguard.scoring.filescore import FileScoreReport, RunReport


HELP = ("Score a Jigsaw CSV: P(Yes) per row read from the answer token's logits (or the case study's "
        "generate-and-parse), for the bare base or each adapter, with AUCs and a degenerate-output alert.")
EXAMPLES = """Examples:

  loraguard score train.csv --base ./Qwen2.5-1.5B-Instruct --adapter ./fold3 --out pred.csv

  loraguard score test.csv --base ./base --adapter ./a --adapter ./b --out pred.csv
      (writes pred.a.csv and pred.b.csv)

  loraguard score test.csv --base ./base --method generate --template chat-v2 --out pred.csv
      (the case study's generate-and-parse baseline)
"""


class ScoreMethod(StrEnum):
    logits = "logits"
    generate = "generate"


class DType(StrEnum):
    auto = "auto"
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _print_run(run: RunReport, *, quiet: bool) -> None:
    from loraguard.scoring.metrics import histogram_lines
    from loraguard.scoring.progress import format_duration

    r = run.result
    t = r.timing
    label = f"adapter {run.adapter}" if run.adapter else "base (no adapter)"
    print(f"{label}: {len(r.row_ids)} rows, method {r.method}, template {r.prompts.template}, "
          f"{format_duration(t.seconds)} ({t.rows_per_second:.1f} rows/s, {t.tokens_per_second:,.0f} tok/s)")
    print(f"  wrote {run.output}")
    if r.answers is not None and not quiet:
        print(f"  answer tokens: {r.answers.describe()}")
    if r.answer_mass is not None and not quiet:
        print(f"  mean probability mass on the answer tokens: {float(r.answer_mass.mean()):.4f}")
    if t.prefix_tokens_skipped and not quiet:
        print(f"  prefix cache: {t.prefix_tokens_skipped:,} of {t.prompt_tokens:,} prompt tokens "
              f"not recomputed ({100 * t.skipped_share:.1f}%)")
    if r.method == "generate":
        counts = ", ".join(f"{k} {v}" for k, v in r.stage_counts.items())
        print(f"  parser stages: {counts}; parse failures (default used) "
              f"{100 * r.parse_failure_share:.1f}%")
    s = run.summary
    print(f"  distribution: mean {_fmt(s['mean'])}  std {_fmt(s['std'])}  min {_fmt(s['min'])}  "
          f"max {_fmt(s['max'])}  distinct {s['distinct']}")
    if not quiet:
        for line in histogram_lines(r.probabilities):
            print(f"    {line}")
    if run.auc is not None:
        a = run.auc
        valid = len(a.per_rule) - len(a.skipped_rules)
        print(f"  ROC AUC {_fmt(None if a.auc != a.auc else a.auc)}  mean per-rule AUC "
              f"{_fmt(None if a.mean_rule_auc != a.mean_rule_auc else a.mean_rule_auc)} ({valid} rules)")
        if not quiet:
            for rule, value in a.per_rule.items():
                shown = "skipped (one class only)" if rule in a.skipped_rules else f"{value:.4f}"
                print(f"    {shown}  n={a.rule_counts[rule]}  {rule[:70]}")
        elif a.skipped_rules:
            print(f"    {len(a.skipped_rules)} rule(s) skipped: only one class in the labels")
    for alert in run.alerts:
        print(f"  ALERT {alert.severity.value} {alert.rule}: {alert.message}")
    if run.degenerate:
        print("  The model gives (nearly) the same answer for every row: check that the adapter fits this "
              "base (`loraguard check`, `loraguard probe`) and the prompt format it was trained with.")


def _write_html(report: FileScoreReport, data: Path, path: Path) -> Path:
    from loraguard.report.html_predictions import write_predictions_html
    from loraguard.scoring.data import load_rows

    rows = load_rows(data)
    series = {run.adapter or "base (no adapter)": run.result.probabilities for run in report.runs}
    return write_predictions_html(series, rows.rules, path, title=f"loraguard score: {data.name}",
                                  labels=rows.labels, notes=[("data", str(data)), ("base", report.base)])


def _print_report(report: FileScoreReport, *, quiet: bool) -> None:
    for run in report.runs:
        _print_run(run, quiet=quiet)
    if report.prompts_path is not None:
        print(f"prompts: {report.prompts_path}")
    if report.metrics_path is not None:
        print(f"metrics: {report.metrics_path}")


def register(app: typer.Typer) -> None:
    """Add the `score` command to `app`."""

    @app.command("score", help=HELP + "\n\n" + EXAMPLES, no_args_is_help=True)
    def score(
        data: Path = typer.Argument(..., help="Jigsaw-format CSV: row_id, body, rule, subreddit, "
                                    "positive_example_1/2, negative_example_1/2[, rule_violation]."),
        base: str = typer.Option(..., "--base", help="Local folder of the base model."),
        adapter: list[str] = typer.Option(
            [], "--adapter", help="Local PEFT adapter folder; repeat for several (one output file each)."),
        out: Path = typer.Option(..., "--out", help="Prediction CSV (row_id,rule_violation). With several "
                                 "adapters: OUT's stem.<adapter-name>.csv per adapter."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
        template: str = typer.Option("chat", "--template", help="chat, plain (case study v1), chat-v2 "
                                     "(case study v2) or a Jinja file whose variables are the CSV columns."),
        method: ScoreMethod = typer.Option(ScoreMethod.logits, "--method", help="logits: P(Yes) from one "
                                           "forward pass; generate: write up to 10 tokens and parse them."),
        answers: str = typer.Option("Yes,No", "--answers", help="Positive and negative answer words."),
        batch_size: int = typer.Option(8, "--batch-size", min=1, help="Rows per forward pass."),
        prefix_cache: bool = typer.Option(True, "--prefix-cache/--no-prefix-cache",
                                          help="Compute a prompt prefix shared by a rule's rows once."),
        max_new_tokens: int = typer.Option(10, "--max-new-tokens", min=1, max=10,
                                           help="generate method: tokens to write."),
        dtype: DType = typer.Option(DType.auto, "--dtype", help="Weights dtype (auto: float32 on CPU, "
                                    "bfloat16 or float16 on CUDA)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        dump_prompts: Path | None = typer.Option(None, "--dump-prompts", help="Write each row's prompt "
                                                 "and exact input ids to this JSONL file (one file, "
                                                 "whatever the number of adapters)."),
        metrics_json: Path | None = typer.Option(None, "--metrics-json", help="Write AUCs, distribution, "
                                                 "parse counts and timing as JSON."),
        fail_on_degenerate: bool = typer.Option(False, "--fail-on-degenerate",
                                                help="Exit 1 when predictions are (nearly) constant."),
        time_budget: str | None = typer.Option(None, "--time-budget", help="Stop early (exit 2) if the "
                                               "projected time exceeds this, e.g. 9h, 90m, 1h30m."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, histogram or details."),
        report_html: Path | None = typer.Option(None, "--report", help="Also write a self-contained HTML "
                                                "report: histograms per adapter, per rule and per label."),
    ) -> int:
        from loraguard.scoring.filescore import score_file

        kwargs: dict[str, Any] = {
            "out": out, "overwrite": overwrite, "template": template, "method": method.value,
            "answers": answers, "batch_size": batch_size, "prefix_cache": prefix_cache,
            "max_new_tokens": max_new_tokens, "dtype": dtype.value, "device": device,
            "dump_prompts_to": dump_prompts, "metrics_json": metrics_json, "time_budget": time_budget,
            "show_progress": not quiet, "log": _err,
        }
        report = score_file(data, base, adapter, **kwargs)
        _print_report(report, quiet=quiet)
        if report_html is not None:
            print(f"report: {_write_html(report, data, report_html)}")
        if fail_on_degenerate and report.any_degenerate:
            return 1
        return 0
