"""`loraguard score`: probabilities for a Jigsaw CSV from a base model, with or without LoRA adapters.

A thin shell over the score pipeline `loraguard.scoring.score_file`: it builds the `ScoreOptions` and
picks the executor (this process, or with `--ray` `loraguard.distributed.RayExecutor`: the same checks
and outputs, on a Ray cluster).
Exit codes: 0 done, 1 degenerate predictions with `--fail-on-degenerate`, 2 bad input, `--time-budget`
exceeded or a failed Ray run (raised as `LoraguardError` and printed by `main()`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from loraguard.cli.options import DType, Method

if TYPE_CHECKING:  # the CLI imports every command at start-up: keep torch-side modules out
    from loraguard.scoring import FileScoreReport, RunReport, ScoreExecutor


HELP = (
    "Score a Jigsaw CSV: P(Yes) per row read from the answer token's logits (or the case study's "
    "generate-and-parse), for the bare base or each adapter, with AUCs and a degenerate-output alert."
)
EXAMPLES = """Examples:

  loraguard score train.csv --base ./Qwen2.5-1.5B-Instruct --adapter ./fold3 --out pred.csv

  loraguard score test.csv --base ./base --adapter ./a --adapter ./b --out pred.csv
      (writes pred.a.csv and pred.b.csv)

  loraguard score test.csv --base ./base --method generate --template chat-v2 --out pred.csv
      (the case study's generate-and-parse baseline)

  loraguard score test.parquet --base ./base --adapter ./a --out pred.parquet --ray --workers 4
      (Ray Data on a local Ray instance, or on RAY_ADDRESS when set; --ray-address auto or
      ray://HOST:10001 for a cluster)
"""


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
    print(
        f"{label}: {len(r.row_ids)} rows, method {r.method}, template {r.prompts.template}, "
        f"{format_duration(t.seconds)} ({t.rows_per_second:.1f} rows/s, {t.tokens_per_second:,.0f} tok/s)"
    )
    print(f"  wrote {run.output}")
    if r.answers is not None and not quiet:
        print(f"  answer tokens: {r.answers.describe()}")
    if r.answer_mass is not None and not quiet:
        print(f"  mean probability mass on the answer tokens: {float(r.answer_mass.mean()):.4f}")
    if t.prefix_tokens_skipped and not quiet:
        print(
            f"  prefix cache: {t.prefix_tokens_skipped:,} of {t.prompt_tokens:,} prompt tokens "
            f"not recomputed ({100 * t.skipped_share:.1f}%)"
        )
    if r.method == "generate":
        counts = ", ".join(f"{k} {v}" for k, v in r.stage_counts.items())
        print(f"  parser stages: {counts}; parse failures (default used) {100 * r.parse_failure_share:.1f}%")
    s = run.summary
    print(
        f"  distribution: mean {_fmt(s['mean'])}  std {_fmt(s['std'])}  min {_fmt(s['min'])}  "
        f"max {_fmt(s['max'])}  distinct {s['distinct']}"
    )
    if not quiet:
        for line in histogram_lines(s["histogram"]):
            print(f"    {line}")
    if run.auc is not None:
        a = run.auc
        valid = len(a.per_rule) - len(a.skipped_rules)
        print(
            f"  ROC AUC {_fmt(None if a.auc != a.auc else a.auc)}  mean per-rule AUC "
            f"{_fmt(None if a.mean_rule_auc != a.mean_rule_auc else a.mean_rule_auc)} ({valid} rules)"
        )
        if not quiet:
            for rule, value in a.per_rule.items():
                shown = "skipped (one class only)" if rule in a.skipped_rules else f"{value:.4f}"
                print(f"    {shown}  n={a.rule_counts[rule]}  {rule[:70]}")
        elif a.skipped_rules:
            print(f"    {len(a.skipped_rules)} rule(s) skipped: only one class in the labels")
    for alert in run.alerts:
        print(f"  ALERT {alert.severity.value} {alert.rule}: {alert.message}")
    if run.degenerate:
        print(
            "  The model gives (nearly) the same answer for every row: check that the adapter fits this "
            "base (`loraguard check`, `loraguard probe`) and the prompt format it was trained with."
        )


def _write_html(report: FileScoreReport, data: Path, path: Path) -> Path:
    from loraguard.report.html_predictions import write_predictions_html

    series = {run.adapter or "base (no adapter)": run.result.probabilities for run in report.runs}
    return write_predictions_html(
        series,
        report.rules,
        path,
        title=f"loraguard score: {data.name}",
        labels=report.labels,
        notes=[("data", str(data)), ("base", report.base)],
    )


def _print_report(report: FileScoreReport, *, quiet: bool) -> None:
    for run in report.runs:
        _print_run(run, quiet=quiet)
    if report.prompts_path is not None:
        print(f"prompts: {report.prompts_path}")
    if report.metrics_path is not None:
        print(f"metrics: {report.metrics_path}")


def _executor(
    use_ray: bool,
    address: str | None,
    workers: int | None,
    cpus: float | None,
    gpus: float | None,
    batch_rows: int | None,
) -> ScoreExecutor:
    """`RayExecutor` for `--ray`; without it this process (and an error for any Ray-only option given)."""
    from loraguard.errors import InputError
    from loraguard.scoring import LocalExecutor

    if not use_ray and address is None:
        given = [
            n
            for n, v in (
                ("--workers", workers),
                ("--cpus-per-worker", cpus),
                ("--gpus-per-worker", gpus),
                ("--ray-batch-rows", batch_rows),
            )
            if v is not None
        ]
        if given:
            raise InputError(f"{', '.join(given)} only apply with --ray (or --ray-address)")
        return LocalExecutor()
    from loraguard.distributed.score import RayExecutor, RayScoreOptions

    return RayExecutor(
        RayScoreOptions(
            address=address,
            workers=2 if workers is None else workers,
            cpus_per_worker=1.0 if cpus is None else cpus,
            gpus_per_worker=gpus or 0.0,
            batch_rows=256 if batch_rows is None else batch_rows,
        )
    )


def _print_ray(ray: Any) -> None:
    s = ray.session
    per = ", ".join(f"{w} {n}" for w, n in ray.batches_per_worker.items())
    start = "reused this process's Ray" if s.reused else f"Ray start-up {s.startup_s:.1f}s"
    print(
        f"ray: {ray.workers} worker(s) on {s.address} ({s.cpus:g} CPUs, {s.gpus:g} GPUs), {ray.batches} "
        f"batches ({per}); {start}, scoring {ray.wall_s:.1f}s"
    )


def register(app: typer.Typer) -> None:
    """Add the `score` command to `app`."""

    @app.command("score", help=HELP + "\n\n" + EXAMPLES, no_args_is_help=True)
    def score(
        data: Path = typer.Argument(
            ...,
            help="Jigsaw-format CSV (with --ray also .parquet): row_id, body, "
            "rule, subreddit, positive_example_1/2, negative_example_1/2[, rule_violation].",
        ),
        base: str = typer.Option(..., "--base", help="Local folder of the base model."),
        adapter: list[str] = typer.Option(
            [],
            "--adapter",
            help="PEFT adapter folder or Hub id (org/name: its small files are "
            "fetched into the HF cache); repeat for several (one output file each).",
        ),
        out: Path = typer.Option(
            ...,
            "--out",
            help="Prediction CSV (row_id,rule_violation); with --ray a "
            ".parquet OUT is written as Parquet. With several adapters: OUT's "
            "stem.<adapter-name>.<suffix> per adapter.",
        ),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
        template: str = typer.Option(
            "chat",
            "--template",
            help="chat, plain (case study v1), chat-v2 "
            "(case study v2) or a Jinja file whose variables are the CSV columns.",
        ),
        method: Method = typer.Option(
            Method.logits,
            "--method",
            help="logits: P(Yes) from one forward pass; generate: write up to 10 tokens and parse them.",
        ),
        answers: str = typer.Option("Yes,No", "--answers", help="Positive and negative answer words."),
        batch_size: int = typer.Option(8, "--batch-size", min=1, help="Rows per forward pass."),
        prefix_cache: bool = typer.Option(
            True, "--prefix-cache/--no-prefix-cache", help="Compute a prompt prefix shared by a rule's rows once."
        ),
        max_new_tokens: int = typer.Option(
            10, "--max-new-tokens", min=1, max=10, help="generate method: tokens to write."
        ),
        dtype: DType = typer.Option(
            DType.auto, "--dtype", help="Weights dtype (auto: float32 on CPU, bfloat16 or float16 on CUDA)."
        ),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        dump_prompts: Path | None = typer.Option(
            None,
            "--dump-prompts",
            help="Write each row's prompt "
            "and exact input ids to this JSONL file (one file, "
            "whatever the number of adapters).",
        ),
        metrics_json: Path | None = typer.Option(
            None, "--metrics-json", help="Write AUCs, distribution, parse counts and timing as JSON."
        ),
        fail_on_degenerate: bool = typer.Option(
            False, "--fail-on-degenerate", help="Exit 1 when predictions are (nearly) constant."
        ),
        time_budget: str | None = typer.Option(
            None,
            "--time-budget",
            help="Stop early (exit 2) if the projected time exceeds this, e.g. 9h, 90m, 1h30m (not with --ray).",
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, histogram or details."),
        report_html: Path | None = typer.Option(
            None,
            "--report",
            help="Also write a self-contained HTML report: histograms per adapter, per rule and per label.",
        ),
        use_ray: bool = typer.Option(
            False,
            "--ray",
            help="Score on Ray (needs the ray extra): Ray Data reads "
            "DATA (CSV, or Parquet by its .parquet suffix) and an actor pool scores it; "
            "OUT may be .parquet too. Starts a local Ray instance, or connects to "
            "RAY_ADDRESS when that is set.",
        ),
        ray_address: str | None = typer.Option(
            None,
            "--ray-address",
            metavar="ADDRESS",
            help="Ray cluster to "
            "use (implies --ray): auto (this machine is a cluster node), "
            "HOST:6379, ray://HOST:10001 (Ray Client) or local.",
        ),
        workers: int | None = typer.Option(
            None,
            "--workers",
            min=1,
            help="With --ray: scorer actors, each loading the base and adapters once [default: 2].",
        ),
        cpus_per_worker: float | None = typer.Option(
            None,
            "--cpus-per-worker",
            min=0.01,
            help="With --ray: CPUs each actor reserves (and torch threads) [default: 1].",
        ),
        gpus_per_worker: float | None = typer.Option(
            None, "--gpus-per-worker", min=0, help="With --ray: GPUs each actor reserves [default: 0]."
        ),
        ray_batch_rows: int | None = typer.Option(
            None,
            "--ray-batch-rows",
            min=1,
            help="With --ray: rows per actor call (prefix cache and padding work within it) [default: 256].",
        ),
    ) -> int:
        from loraguard.scoring import ScoreOptions, score_file

        options = ScoreOptions(
            out=out,
            overwrite=overwrite,
            template=template,
            method=method.value,
            answers=answers,
            batch_size=batch_size,
            prefix_cache=prefix_cache,
            max_new_tokens=max_new_tokens,
            dtype=dtype.value,
            device=device,
            dump_prompts_to=dump_prompts,
            metrics_json=metrics_json,
            time_budget=time_budget,
            show_progress=not quiet,
        )
        executor = _executor(use_ray, ray_address, workers, cpus_per_worker, gpus_per_worker, ray_batch_rows)
        report = score_file(data, base, adapter, options, executor=executor, log=_err)
        if report.execution is not None:
            _print_ray(report.execution)
        _print_report(report, quiet=quiet)
        if report_html is not None:
            print(f"report: {_write_html(report, data, report_html)}")
        if fail_on_degenerate and report.any_degenerate:
            return 1
        return 0
