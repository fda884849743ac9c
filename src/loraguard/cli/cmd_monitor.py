"""`loraguard monitor`: statistics and alerts for a predictions file produced elsewhere."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from loraguard.cli.options import format_option
from loraguard.report.monitor_formatter import MonitorFormatter


def register(app: typer.Typer) -> None:
    """Add the `monitor` command to `app`."""
    app.command(
        "monitor",
        help="Summarise a predictions CSV (row_id, rule_violation[, parsed]) and run the alert rules "
        "(degenerate, stuck, low-spread, skew, no-positives, parse-failure, invalid-value, and drift "
        "with --reference). Exit 0 without error alerts (--strict: without warnings), 1 with alerts, "
        "2 on bad input.",
        epilog="Examples: loraguard monitor preds.csv ; loraguard monitor preds.csv --reference prod.csv "
        "--policy policy.toml --format json ; loraguard monitor preds.csv --group-by-file train.csv "
        "--segment rule",
    )(monitor_command)


def monitor_command(
    predictions: Annotated[Path, typer.Argument(help="Predictions CSV with row_id and rule_violation columns.")],
    reference: Annotated[
        Path | None,
        typer.Option("--reference", "-r", help="Reference predictions CSV for the drift rule (exact KS)."),
    ] = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", "-p", help="Policy TOML ([monitor.<rule>] tables).")
    ] = None,
    fmt: str = format_option(MonitorFormatter),
    group_by_file: Annotated[
        Path | None,
        typer.Option("--group-by-file", help="CSV with row_id and the --segment column (e.g. train.csv)."),
    ] = None,
    segment: Annotated[
        str | None, typer.Option("--segment", help="Column of --group-by-file to segment by [default: rule].")
    ] = None,
    column: Annotated[str, typer.Option("--column", help="Probability column of the CSV files.")] = "rule_violation",
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warning alerts too.")] = False,
) -> int:
    import numpy as np

    from loraguard.errors import InputError
    from loraguard.monitor.alerts import evaluate
    from loraguard.monitor.core import Monitor, monitor_values
    from loraguard.monitor.drift import drift_stats
    from loraguard.monitor.policy import default_policy, load_policy
    from loraguard.monitor.predictions import align_index, iter_predictions, read_column, read_predictions
    from loraguard.monitor.report import MonitorReport

    if segment is not None and group_by_file is None:
        raise InputError("--segment needs --group-by-file DATA.csv (the file holding that column)")
    applied = load_policy(policy) if policy is not None else default_policy()
    if group_by_file is not None:  # segments are aligned by row_id: every row_id is kept
        preds = read_predictions(predictions, column=column)
        ids, labels = read_column(group_by_file, segment or "rule")
        index = align_index(preds.row_ids, ids, what=str(predictions), other=str(group_by_file), allow_extra=True)
        summary = monitor_values(preds.values, parsed=preds.parsed, segments=labels[index]).summary()
        current = preds.values if preds.parsed is None else preds.values[preds.parsed]
    else:  # streamed in chunks: bounded memory whatever the file's size (the values only for drift)
        watched, kept = Monitor(bins=20), []  # as `monitor_values`
        for chunk in iter_predictions(predictions, column=column):
            watched.update(chunk.values, parsed=chunk.parsed)
            if reference is not None:
                kept.append(chunk.values if chunk.parsed is None else chunk.values[chunk.parsed])
        summary = watched.summary()
        current = np.concatenate(kept) if kept else np.empty(0)
    ref_values = None if reference is None else read_predictions(reference, column=column).values
    alerts = evaluate(summary, applied, reference=ref_values, current_values=current)
    drift = None if ref_values is None else drift_stats(summary, ref_values, current_values=current)
    inputs = {
        "predictions": str(predictions),
        "reference": None if reference is None else str(reference),
        "group_by_file": None if group_by_file is None else str(group_by_file),
        "segment": (segment or "rule") if group_by_file is not None else None,
    }
    report = MonitorReport(summary, alerts, inputs=inputs, drift=drift, policy=applied.to_dict())
    sys.stdout.write(MonitorFormatter(title=f"loraguard monitor {predictions}").render(report, fmt))
    return report.exit_code(strict=strict)
