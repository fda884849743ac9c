"""`loraguard check`: static compatibility of an adapter with a base model."""

from __future__ import annotations

import sys

import typer

from loraguard.cli.options import format_option
from loraguard.engines import EngineName
from loraguard.report.check_formatter import CheckFormatter


def register(app: typer.Typer) -> None:
    app.command(
        "check",
        help="Check an adapter against a base model statically (header and configs only, no weights "
        "loaded). Exit 0 without errors (--strict: without warnings), 1 with findings, 2 on usage errors.",
        epilog="Examples: loraguard check ./my-adapter --base Qwen/Qwen2.5-1.5B-Instruct ; "
        "loraguard check adapter_model.safetensors --base ./base-folder --format json ; "
        "loraguard check ./my-adapter --base Qwen/Qwen2.5-1.5B-Instruct --engine vllm --engine sglang "
        "--max-lora-rank 64",
    )(check_command)


def check_command(
    adapter: str = typer.Argument(
        ..., help="Adapter folder, .safetensors/.bin file (config beside it) or Hub repo id."
    ),
    base: str | None = typer.Option(
        None,
        "--base",
        "-b",
        help="Base: folder with config.json, catalog name or Hub id. "
        "Default: the adapter's claimed base, if known offline.",
    ),
    fmt: str = format_option(CheckFormatter),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 on warnings too."),
    select: list[str] = typer.Option([], "--select", help="Only rules whose code starts with this (repeatable)."),
    ignore: list[str] = typer.Option([], "--ignore", help="Skip rules whose code starts with this (repeatable)."),
    task: str | None = typer.Option(None, "--task", help="Override the adapter's task_type (CAUSAL_LM, SEQ_CLS...)."),
    engine: list[EngineName] = typer.Option(
        [],
        "--engine",
        "-e",
        help="Serving engine to check for (repeatable): peft (default, the base rules "
        "only), vllm, sglang, lorax. Adds the LG7xx rules of each engine.",
    ),
    max_lora_rank: int | None = typer.Option(
        None,
        "--max-lora-rank",
        min=1,
        help="The engines' --max-lora-rank (vLLM's default: 16; SGLang: sized from the adapters loaded at start).",
    ),
    lora_target_modules: str | None = typer.Option(
        None,
        "--lora-target-modules",
        help="The engines' --lora-target-modules, comma-separated (e.g. o_proj,qkv_proj; 'all' for every module).",
    ),
    html: str | None = typer.Option(
        None, "--html", help="Also write a self-contained HTML report (findings and a weight-norm heatmap) here."
    ),
) -> int:
    from loraguard.checks.checker import check

    report = check(
        adapter,
        base,
        task=task,
        select=select,
        ignore=ignore,
        engines=[e.value for e in engine] or ("peft",),
        max_lora_rank=max_lora_rank,
        lora_target_modules=lora_target_modules,
        norms=html is not None,
    )
    if html is not None:
        from loraguard.report.html_check import write_check_html

        write_check_html(report, html)
        print(f"HTML report in {html}", file=sys.stderr)
    sys.stdout.write(CheckFormatter(color=sys.stdout.isatty()).render(report, fmt))
    return report.exit_code(strict=strict)
