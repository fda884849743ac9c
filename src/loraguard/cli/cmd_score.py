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
from typing import TYPE_CHECKING

import typer

from loraguard.cli.options import MODEL_BASE_HELP, DType, Method, format_option
from loraguard.report.score_formatter import ScoreFormatter, ray_summary

if TYPE_CHECKING:  # the CLI imports every command at start-up: keep torch-side modules out
    from loraguard.scoring import FileScoreReport, ScoreExecutor


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


def register(app: typer.Typer) -> None:
    """Add the `score` command to `app`."""

    @app.command("score", help=HELP + "\n\n" + EXAMPLES, no_args_is_help=True)
    def score(
        data: Path = typer.Argument(
            ...,
            help="Jigsaw-format CSV (with --ray also .parquet): row_id, body, "
            "rule, subreddit, positive_example_1/2, negative_example_1/2[, rule_violation].",
        ),
        base: str = typer.Option(..., "--base", help=MODEL_BASE_HELP),
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
        fmt: str = format_option(ScoreFormatter),
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
            show_progress=not quiet and fmt == "text",
        )
        executor = _executor(use_ray, ray_address, workers, cpus_per_worker, gpus_per_worker, ray_batch_rows)
        report = score_file(data, base, adapter, options, executor=executor, log=_err)
        if report.execution is not None:
            (sys.stdout if fmt == "text" else sys.stderr).write(ray_summary(report.execution))
        sys.stdout.write(ScoreFormatter(quiet=quiet).render(report, fmt))
        if report_html is not None:
            html = _write_html(report, data, report_html)
            print(f"report: {html}", file=sys.stdout if fmt == "text" else sys.stderr)
        if fail_on_degenerate and report.any_degenerate:
            return 1
        return 0
