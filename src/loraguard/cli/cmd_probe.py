"""`loraguard probe`: load base and adapter for real and run a few rows with and without the adapter."""

from __future__ import annotations

import sys

import typer

from loraguard.cli.options import MODEL_BASE_HELP, Method, format_option
from loraguard.report.probe_formatter import ProbeFormatter

HELP = (
    "Load the base (a folder, a .gguf file or a known model) and the adapter (a folder or a Hub id; "
    "transformers + PEFT) and "
    "score a few rows with and without the adapter: no effect, degenerate or non-finite output, batched "
    "vs one-row disagreement, parse failures, and whether the adapter or the base/prompt is to blame. "
    "Runs `check` first and stops on its errors unless --force. Exit 0 without errors, 1 with errors, "
    "2 on bad input."
)
EPILOG = (
    "Examples: loraguard probe ./my-adapter --base ./Qwen2.5-1.5B-Instruct ; "
    "loraguard probe ./my-adapter --base ./base --data train.csv --samples 32 --format json"
)


def register(app: typer.Typer) -> None:
    app.command("probe", help=HELP, epilog=EPILOG)(probe_command)


def probe_command(
    adapter: str = typer.Argument(..., help="Adapter folder (adapter_config.json and weights) or Hub id (org/name)."),
    base: str = typer.Option(..., "--base", "-b", help=MODEL_BASE_HELP),
    data: str | None = typer.Option(None, "--data", help="Jigsaw-format CSV; default: the built-in rows."),
    samples: int = typer.Option(16, "--samples", "-n", help="Number of rows (the first N of the data)."),
    method: Method = typer.Option(
        Method.logits, "--method", help="logits: P(Yes) from the answer token; generate: write and parse."
    ),
    fmt: str = format_option(ProbeFormatter),
    force: bool = typer.Option(False, "--force", help="Probe even when the static check finds errors."),
    template: str = typer.Option("chat", "--template", help="Prompt template: chat, plain, chat-v2 or a Jinja file."),
    batch_size: int = typer.Option(8, "--batch-size", help="Batch size of the batched-vs-one-row comparison."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    dtype: str = typer.Option("auto", "--dtype", help="auto, float32, bfloat16 or float16."),
) -> int:
    from loraguard.probe.run import probe
    from loraguard.scoring.progress import RichProgress

    # A bar on stderr (forward passes, tokens/s) when it is a terminal and the output is text.
    with RichProgress("probing", force=False) as bar:
        report = probe(
            adapter,
            base,
            rows=data,
            samples=samples,
            method=method.value,
            force=force,
            template=template,
            batch_size=batch_size,
            device=device,
            dtype=dtype,
            progress=bar if bar.enabled and fmt == "text" else None,
        )
    sys.stdout.write(ProbeFormatter(color=sys.stdout.isatty()).render(report, fmt))
    return report.exit_code()
