"""`loraguard gate`: pass or fail a candidate adapter's predictions against the production baseline."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from loraguard.cli.options import format_option
from loraguard.report.gate_formatter import GateFormatter


def register(app: typer.Typer) -> None:
    """Add the `gate` command to `app`."""
    app.command(
        "gate",
        help="Compare a candidate's predictions with the baseline's, row by row (row_id): monitor rules, "
        "distribution (KS, PSI, JS), rank and decision agreement, positive rate, and with --labels the "
        "pooled and per-rule AUC with a paired bootstrap interval. Exit 0 on pass or warn (--strict: "
        "pass only), 1 on fail, 2 on bad input.",
        epilog="Examples: loraguard gate cand.csv --baseline prod.csv ; loraguard gate cand.csv --baseline "
        "prod.csv --labels train.csv --policy policy.toml --format markdown --out gate.md",
    )(gate_command)


def gate_command(
    candidate: Annotated[Path, typer.Argument(help="Candidate predictions CSV (row_id, rule_violation).")],
    baseline: Annotated[Path, typer.Option("--baseline", "-b", help="Production (baseline) predictions CSV.")],
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels",
            "-l",
            help="Labelled CSV (row_id, rule_violation and the --group-by column), e.g. the Jigsaw train.csv.",
        ),
    ] = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", "-p", help="Policy TOML ([gate] and [gate.<metric>] tables).")
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option("--threshold", "-t", min=0.0, max=1.0, help="Decision threshold [default: the policy's, 0.5]."),
    ] = None,
    fmt: str = format_option(GateFormatter),
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the report here instead of stdout.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out file.")] = False,
    group_by: Annotated[str, typer.Option("--group-by", help="Column of --labels for per-group AUC.")] = "rule",
    column: Annotated[str, typer.Option("--column", help="Probability and label column.")] = "rule_violation",
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when the verdict is warn too.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report with histograms here.")
    ] = None,
) -> int:
    from loraguard.errors import OutputExistsError
    from loraguard.gate import run_gate
    from loraguard.monitor.policy import default_policy, load_policy
    from loraguard.monitor.predictions import read_labels, read_predictions

    if out is not None and out.exists() and not overwrite:
        raise OutputExistsError(f"{out} already exists: pass --overwrite to replace it", path=out)
    applied = load_policy(policy) if policy is not None else default_policy()
    cand = read_predictions(candidate, column=column)
    base = read_predictions(baseline, column=column)
    lab = None if labels is None else read_labels(labels, column=column, group=group_by)
    report = run_gate(cand, base, lab, applied, threshold=threshold)
    if html is not None:
        from loraguard.report.html_gate import write_gate_html

        write_gate_html(report, cand, base, html, labels=lab)
    text = GateFormatter().render(report, fmt)
    if out is None:
        sys.stdout.write(text)
    else:
        _write_atomic(out, text)
        failed = ", ".join(c.metric for c in report.failed) or "none"
        sys.stdout.write(f"gate: {report.verdict.value.upper()} (failed checks: {failed}); report in {out}\n")
    return report.exit_code(strict=strict)


def _write_atomic(path: Path, text: str) -> None:
    from loraguard.fileio import atomic_write

    atomic_write(path, text, overwrite=True)
