"""`loraguard ensemble`: combine prediction files (rank averaging by default) and monitor the result."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from loraguard.cli.options import format_option
from loraguard.report.monitor_formatter import MonitorFormatter


class EnsembleMethod(StrEnum):
    rank = "rank"
    mean = "mean"
    geometric = "geometric"


def register(app: typer.Typer) -> None:
    """Add the `ensemble` command to `app`."""
    app.command(
        "ensemble",
        help="Combine prediction CSVs aligned by row_id: weighted rank averaging (rankdata/(n+1)) by "
        "default, optionally within groups (--group-by rule --data train.csv). The output is written "
        "atomically and monitored, and so is every input (a degenerate input hides in a rank average): "
        "exit 0 without error alerts (--strict: without warnings), 1 with alerts, 2 on bad input.",
        epilog="Examples: loraguard ensemble a.csv b.csv c.csv --out e.csv --weights 0.5,0.3,0.2 ; "
        "loraguard ensemble a.csv b.csv --out e.csv --group-by rule --data test.csv",
    )(ensemble_command)


def ensemble_command(
    inputs: Annotated[list[Path], typer.Argument(help="Two or more predictions CSVs (row_id, rule_violation).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output CSV (row_id, rule_violation).")],
    method: Annotated[EnsembleMethod, typer.Option("--method", "-m", help="How to combine.")] = EnsembleMethod.rank,
    weights: Annotated[
        str | None,
        typer.Option(
            "--weights",
            "-w",
            help="One weight per input, e.g. 0.5,0.3,0.2 (normalised to sum 1) [default: equal].",
        ),
    ] = None,
    group_by: Annotated[
        str | None, typer.Option("--group-by", help="Rank within groups of this --data column (e.g. rule).")
    ] = None,
    data: Annotated[Path | None, typer.Option("--data", help="CSV with row_id and the --group-by column.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out file.")] = False,
    policy: Annotated[Path | None, typer.Option("--policy", "-p", help="Policy TOML for the monitor rules.")] = None,
    fmt: str = format_option(MonitorFormatter),
    column: Annotated[str, typer.Option("--column", help="Probability column of the CSV files.")] = "rule_violation",
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warning alerts too.")] = False,
) -> int:
    from loraguard.ensemble import ensemble, input_alerts, input_summaries, parse_weights
    from loraguard.errors import InputError, OutputExistsError
    from loraguard.monitor.alerts import evaluate
    from loraguard.monitor.core import monitor_values
    from loraguard.monitor.policy import default_policy, load_policy
    from loraguard.monitor.predictions import align_index, read_column, read_predictions, write_predictions
    from loraguard.monitor.report import MonitorReport

    if (group_by is None) != (data is None):
        raise InputError("--group-by and --data go together: --group-by rule --data DATA.csv")
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} already exists: pass --overwrite to replace it", path=out)
    applied = load_policy(policy) if policy is not None else default_policy()
    preds = [read_predictions(path, column=column) for path in inputs]
    groups = None
    if group_by is not None and data is not None:
        ids, labels = read_column(data, group_by)
        index = align_index(preds[0].row_ids, ids, what=str(inputs[0]), other=str(data), allow_extra=True)
        groups = labels[index]
    parsed_weights = None if weights is None else parse_weights(weights)
    result = ensemble(preds, method=method.value, weights=parsed_weights, groups=groups)
    write_predictions(result, out, column=column, overwrite=overwrite)
    summary = monitor_values(result.values, parsed=result.parsed).summary()
    summaries = input_summaries(preds)
    alerts = evaluate(summary, applied) + input_alerts(preds, applied, summaries)
    alerts = tuple(sorted(alerts, key=lambda a: -a.severity.rank))
    inputs_doc = {
        "inputs": [str(p) for p in inputs],
        "input_summaries": [
            {"input": str(p), "n": s.n, "mean": s.mean, "std": s.std, "distinct": s.distinct}
            for p, s in zip(inputs, summaries, strict=True)
        ],
        "out": str(out),
        "method": method.value,
        "weights": parsed_weights,
        "group_by": group_by,
        "data": None if data is None else str(data),
    }
    report = MonitorReport(summary, alerts, inputs=inputs_doc, policy=applied.to_dict())
    title = f"loraguard ensemble: wrote {out} ({method.value} of {len(inputs)} files)"
    sys.stdout.write(MonitorFormatter(title=title).render(report, fmt))
    return report.exit_code(strict=strict)
