"""The demo's model steps: probe, score, monitor and gate on a tiny model, offline, on the CPU.

A healthy adapter and a degenerate one (every P(Yes) 0.0, like the case study, yet it passes the
static check) go through the whole path; a copy of the healthy adapter plays the re-deployed
candidate whose gate passes.
"""

from __future__ import annotations

import csv
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loraguard.scoring.builtin_rows import COLUMNS, builtin_rows


@dataclass(frozen=True)
class Step:
    """One command of the demo, what it should say and what it said."""

    command: str
    subject: str
    expected: str
    got: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.expected == self.got


def _q(path: Path) -> str:
    return shlex.quote(str(path))


def write_rows_csv(path: Path) -> Path:
    """The 24 built-in labelled rows as a Jigsaw-format CSV."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(builtin_rows())
    return path


def run_model_demo(out: Path, *, say: Callable[[str], None] = print) -> list[Step]:
    """Probe, score, monitor and gate the demo's healthy and degenerate adapters under `out`."""
    from loraguard.demo.degenerate import build_probe_fixture
    from loraguard.demo.tiny import quiet
    from loraguard.gate import run_gate
    from loraguard.monitor import monitor_values
    from loraguard.monitor.predictions import read_labels, read_predictions
    from loraguard.probe import probe
    from loraguard.scoring import score_file

    with quiet():
        fx = build_probe_fixture(out / "probe")
    base = fx.base
    steps: list[Step] = []
    for name, adapter, expected in (("healthy", fx.healthy, "pass"), ("degenerate", fx.degenerate, "fail")):
        with quiet():
            report = probe(adapter, base)
        detail = f"blame: {report.blame or '-'}; " + ", ".join(
            sorted({f.category for f in report.findings if f.severity.value != "info"}) or ["-"]
        )
        steps.append(
            Step(
                f"loraguard probe {_q(adapter)} --base {_q(base)}",
                f"probe {name} adapter",
                expected,
                report.verdict.value,
                detail,
            )
        )
    say("Step 2, probe: loaded base and adapter for real; ran the built-in rows with and without the adapter.")

    data = write_rows_csv(out / "rows.csv")
    resaved = out / "probe" / "adapters" / "healthy-redeploy"
    shutil.copytree(fx.healthy, resaved)
    preds = out / "preds.csv"
    with quiet():
        scored = score_file(data, base, [fx.healthy, resaved, fx.degenerate], out=preds)
    files = {r.adapter: r.output for r in scored.runs}
    say(
        f"Step 3, score: {len(scored.runs)} adapters × {len(builtin_rows())} rows, P(Yes) from the answer "
        f"token logits; wrote {', '.join(p.name for p in files.values())}."
    )
    steps.append(
        Step(
            f"loraguard score {_q(data)} --base {_q(base)} --adapter {_q(fx.healthy)} "
            f"--adapter {_q(resaved)} --adapter {_q(fx.degenerate)} --out {_q(preds)} --overwrite",
            "score three adapters",
            "done",
            "done",
            f"{len(files)} prediction files",
        )
    )

    degenerate_csv, healthy_csv, redeploy_csv = (files["degenerate"], files["healthy"], files["healthy-redeploy"])
    mon = monitor_values(read_predictions(degenerate_csv).values)
    alerts = mon.alerts()
    errors = sorted({a.rule for a in alerts if a.severity.value == "error"})
    steps.append(
        Step(
            f"loraguard monitor {_q(degenerate_csv)}",
            "monitor the degenerate predictions",
            "fail",
            "fail" if errors else "pass",
            "alerts: " + (", ".join(errors) or "-"),
        )
    )
    labels = read_labels(data)
    for subject, candidate, expected in (
        ("gate: degenerate vs production", degenerate_csv, "fail"),
        ("gate: healthy re-deploy vs production", redeploy_csv, "pass"),
    ):
        gate = run_gate(read_predictions(candidate), read_predictions(healthy_csv), labels)
        failed = [c.metric for c in gate.checks if str(c.status) == "fail"]
        steps.append(
            Step(
                f"loraguard gate {_q(candidate)} --baseline {_q(healthy_csv)} --labels {_q(data)}",
                subject,
                expected,
                gate.verdict.value,
                "failed: " + (", ".join(failed[:4]) or "-"),
            )
        )
    return steps
