"""Fixtures for the HTML report tests: synthetic adapters (numpy only) and gate inputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from report_helpers import LAYERS, make_adapter, make_base


@dataclass(frozen=True)
class Synthetic:
    base: Path
    healthy: Path
    broken: Path
    """Layer 1 missing, layer 2 zero, layer 3 NaN, layer 0 scaled 60× and layers 4–7 beyond the 4-layer base."""


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Synthetic:
    root = tmp_path_factory.mktemp("synthetic")
    base = make_base(root / "base")
    healthy = make_adapter(root / "healthy", modules=("q_proj", "k_proj", "v_proj", "o_proj"))
    broken = make_adapter(
        root / "broken",
        layers=[0, 2, 3, 4, 5, 6, 7],
        modules=("q_proj", "k_proj", "v_proj", "o_proj"),
        zero=[2],
        nan=[3],
        scale={0: 60.0},
    )
    assert LAYERS == 4
    return Synthetic(base, healthy, broken)


@dataclass(frozen=True)
class GateFiles:
    candidate: Path
    baseline: Path
    labels: Path


@pytest.fixture
def gate_files(tmp_path: Path) -> GateFiles:
    rng = np.random.default_rng(7)
    n = 600
    y = (rng.random(n) < 0.3).astype(int)
    base = np.clip(0.4 * y + rng.beta(2, 5, n) * 0.6, 0, 1)
    cand = np.clip(base * 0.6 + 0.3 * rng.random(n), 0, 1)
    rules = np.array(["No <b>advertising</b>", "No legal advice", "Be civil"])[rng.integers(0, 3, n)]

    def write(path: Path, values: np.ndarray) -> Path:
        path.write_text("row_id,rule_violation\n" + "".join(f"{i},{v!r}\n" for i, v in enumerate(values.tolist())))
        return path

    labels = tmp_path / "labels.csv"
    rows = zip(rules.tolist(), y.tolist(), strict=True)
    labels.write_text("row_id,rule,rule_violation\n" + "".join(f"{i},{r},{v}\n" for i, (r, v) in enumerate(rows)))
    return GateFiles(write(tmp_path / "cand.csv", cand), write(tmp_path / "prod.csv", base), labels)
