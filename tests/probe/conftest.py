"""The probe fixture (tiny base, healthy/degenerate/no-op/non-finite adapters) built once per worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def probe_fx(tmp_path_factory: pytest.TempPathFactory, probe_models: Any) -> dict[str, Any]:
    from fault_cases.probe_models import build_nonfinite_adapter, write_blind_template
    from loraguard.demo.tiny import quiet

    fx = probe_models
    root = tmp_path_factory.mktemp("probe")
    with quiet():
        nonfinite = build_nonfinite_adapter(fx.base, root / "adapters" / "nonfinite")
    return {
        "base": fx.base,
        "healthy": fx.healthy,
        "degenerate": fx.degenerate,
        "noop": fx.noop,
        "nonfinite": nonfinite,
        "blind_template": write_blind_template(root / "blind.j2"),
        "root": root,
    }


@pytest.fixture(scope="session")
def healthy_report(probe_fx: dict[str, Any]) -> Any:
    from loraguard.probe import probe

    return probe(probe_fx["healthy"], probe_fx["base"], device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def degenerate_report(probe_fx: dict[str, Any]) -> Any:
    from loraguard.probe import probe

    return probe(probe_fx["degenerate"], probe_fx["base"], device="cpu")


@pytest.fixture(scope="session")
def rows_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in rows as a Jigsaw-format CSV."""
    import csv

    from loraguard.scoring.builtin_rows import COLUMNS, builtin_rows

    path = tmp_path_factory.mktemp("probe-data") / "rows.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(builtin_rows())
    return path
