"""The demo's model steps: check, probe, score, generate-and-parse, monitor and gate, on the CPU.

By default on the real SmolLM2-135M-Instruct (pulled into loraguard's cache once, offline afterwards)
with the reference adapters trained on it: a healthy one and one trained on all-negative labels
(every P(Yes) near 0.0, like the case study, yet it passes the static check). When the real model
cannot be had, the same steps run on a tiny random model, said in one line. A copy of the healthy
adapter plays the re-deployed candidate whose gate passes.
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


def _q(path: str | Path) -> str:
    return shlex.quote(str(path))


def write_rows_csv(path: Path, limit: int | None = None) -> Path:
    """The 24 built-in labelled rows (or the first `limit`) as a Jigsaw-format CSV."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(builtin_rows()[:limit])
    return path


REAL_MODEL = "smollm2-135m-instruct"
ADAPTERS = Path(__file__).resolve().parent / "adapters"
"""The reference adapters trained on the real model by `scripts/train_reference_adapters.py` (shipped)."""


@dataclass(frozen=True)
class DemoModels:
    """The base and adapters the demo's model steps run: the real instruct model, or the tiny fallback."""

    kind: str
    """`real` (SmolLM2-135M-Instruct and the trained reference adapters) or `tiny` (random weights)."""
    base: str | Path
    """What `--base` is given: the known model's name (real) or the tiny model's folder."""
    healthy: Path
    broken: Path
    """The adapter that passes the static check and answers the same for every row."""

    @property
    def broken_name(self) -> str:
        return self.broken.name


def demo_models(out: Path, *, real: bool = True, say: Callable[[str], None] = print) -> DemoModels:
    """The real model (pulled into loraguard's cache once, offline afterwards) with copies of the reference
    adapters under `out`; the tiny random model when the real one cannot be had (said in one line)."""
    from loraguard.demo.tiny import quiet
    from loraguard.errors import LoraguardError

    if real:
        try:
            from loraguard.models import ensure

            ensure(REAL_MODEL, say=say)
            adapters = out / "adapters"
            for name in ("healthy", "collapsed"):
                shutil.copytree(ADAPTERS / name, adapters / name)
            return DemoModels("real", REAL_MODEL, adapters / "healthy", adapters / "collapsed")
        except (LoraguardError, OSError) as exc:
            say(f"the real model is unavailable ({exc}); using the tiny random model instead")
    from loraguard.demo.degenerate import build_probe_fixture

    with quiet():
        fx = build_probe_fixture(out / "probe")
    return DemoModels("tiny", fx.base, fx.healthy, fx.degenerate)


def run_model_demo(out: Path, models: DemoModels, *, say: Callable[[str], None] = print) -> list[Step]:
    """Probe, score, monitor and gate the demo's healthy and broken adapters under `out`."""
    from loraguard.checks.checker import check
    from loraguard.demo.tiny import quiet
    from loraguard.gate import run_gate
    from loraguard.monitor import monitor_values
    from loraguard.monitor.predictions import read_labels, read_predictions
    from loraguard.probe import probe
    from loraguard.scoring import score_file

    base = models.base
    broken = models.broken_name
    steps: list[Step] = []
    for name, adapter in (("healthy", models.healthy), (broken, models.broken)):
        static = check(adapter, base)
        steps.append(
            Step(
                f"loraguard check {_q(adapter)} --base {_q(base)}",
                f"check {name} adapter",
                "pass",
                "fail" if static.errors else "pass",
                ", ".join(sorted({f.category for f in static.findings if f.severity.value != "info"})) or "-",
            )
        )
    for name, adapter, expected in (("healthy", models.healthy, "pass"), (broken, models.broken, "fail")):
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
    resaved = models.healthy.parent / "healthy-redeploy"
    shutil.copytree(models.healthy, resaved)
    preds = out / "preds.csv"
    with quiet():
        scored = score_file(data, base, [models.healthy, resaved, models.broken], out=preds)
    files = {r.adapter: r.output for r in scored.runs}
    say(
        f"Step 3, score: {len(scored.runs)} adapters × {len(builtin_rows())} rows, P(Yes) from the answer "
        f"token logits; wrote {', '.join(p.name for p in files.values())}."
    )
    steps.append(
        Step(
            f"loraguard score {_q(data)} --base {_q(base)} --adapter {_q(models.healthy)} "
            f"--adapter {_q(resaved)} --adapter {_q(models.broken)} --out {_q(preds)} --overwrite",
            "score three adapters",
            "done",
            "done",
            "AUC on the labels: "
            + ", ".join(f"{r.adapter} {r.auc.auc:.2f}" for r in scored.runs if r.auc is not None)
            + " (0.5: chance)",
        )
    )

    if models.kind == "real":  # the case study's own method and v1 prompt: generate, then parse in 3 stages
        generated = out / "preds-generate.csv"
        few = write_rows_csv(out / "rows-8.csv", limit=8)  # generation is slow: 8 rows tell the story
        with quiet():
            run = score_file(few, base, [models.broken], out=generated, method="generate", template="plain").runs[0]
        values = sorted({round(float(v), 4) for v in run.result.probabilities})
        logit_max = max(float(r.result.probabilities.max()) for r in scored.runs if r.adapter == broken)
        parsed = 100 * (1 - run.result.parse_failure_share)
        steps.append(
            Step(
                f"loraguard score {_q(few)} --base {_q(base)} --adapter {_q(models.broken)} --method generate "
                f"--template plain --out {_q(generated)} --overwrite",
                f"{broken}, generate and parse (the case study's method and prompt)",
                "parsed 100%",
                f"parsed {parsed:.0f}%",
                f"values {', '.join(f'{v:g}' for v in values)}; its P(Yes) from the logits is at most "
                f"{logit_max:.4f}: a 100% parse rate hides the collapse",
            )
        )
    degenerate_csv, healthy_csv, redeploy_csv = (files[broken], files["healthy"], files["healthy-redeploy"])
    mon = monitor_values(read_predictions(degenerate_csv).values)
    alerts = mon.alerts()
    errors = sorted({a.rule for a in alerts if a.severity.value == "error"})
    steps.append(
        Step(
            f"loraguard monitor {_q(degenerate_csv)}",
            f"monitor the {broken} predictions",
            "fail",
            "fail" if errors else "pass",
            "alerts: " + (", ".join(errors) or "-"),
        )
    )
    labels = read_labels(data)
    for subject, candidate, expected in (
        (f"gate: {broken} vs production", degenerate_csv, "fail"),
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
