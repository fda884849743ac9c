"""`run_matrix` with `RayMatrixExecutor` / `loraguard matrix --ray` on a local Ray instance against the local matrix."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from report_helpers import make_adapter, make_base

from loraguard.matrix import MatrixRow, run_matrix

pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'loraguard[ray]'")
pytestmark = [pytest.mark.slow, pytest.mark.ray]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A healthy, a NaN and a wider adapter, a checkpoint inside the healthy one; two bases."""
    root = tmp_path_factory.mktemp("matrix")
    ads = root / "adapters"
    return {
        "adapters": ads,
        "healthy": make_adapter(ads / "healthy"),
        "checkpoint": make_adapter(ads / "healthy" / "checkpoint-10", seed=1),
        "nan": make_adapter(ads / "nan", nan=[1]),
        "wide": make_adapter(ads / "wide", hidden=96, base="test/wide-llama"),
        "base": make_base(root / "bases" / "tiny"),
        "wide_base": make_base(root / "bases" / "wide", hidden_size=96, _name_or_path="test/wide-llama"),
    }


def _same(row: MatrixRow) -> MatrixRow:
    return dataclasses.replace(row, ms=0.0)


def test_ray_matrix_equals_the_local_matrix(ray_local: Any, tree: dict[str, Path]) -> None:
    from loraguard.distributed import RayMatrixExecutor

    bases = [str(tree["base"]), str(tree["wide_base"]), None]
    local = run_matrix([tree["adapters"]], bases, jobs=1, engines=["vllm"])
    dist = run_matrix([tree["adapters"]], bases, engines=["vllm"], executor=RayMatrixExecutor())
    assert dist.executor == "ray" and dist.jobs == 2 and dist.adapters == local.adapters
    assert [_same(r) for r in dist.rows] == [_same(r) for r in local.rows]
    assert {r.verdict for r in dist.rows} >= {"pass", "fail"}  # not a matrix of identical rows


def test_a_cell_that_keeps_killing_its_worker_is_an_error_row(
    ray_local: Any, tree: dict[str, Path], tmp_path: Path
) -> None:
    from ray_faults import killing_check

    from loraguard.distributed import RayMatrixExecutor

    deaths = tmp_path / "deaths.log"
    paths = [tree["healthy"], tree["nan"], tree["wide"], tree["healthy"]]
    local = run_matrix(paths, [str(tree["base"])], discover=False)
    dist = run_matrix(
        paths,
        [str(tree["base"])],
        discover=False,
        executor=RayMatrixExecutor(max_retries=1),
        cell_fn=killing_check("nan", deaths),
    )
    assert [r.verdict for r in dist.rows] == ["pass", "error", "fail", "pass"]
    assert dist.rows[1].error.startswith("worker process failed") and dist.rows[1].categories == ()
    for i in (0, 2, 3):
        assert _same(dist.rows[i]) == _same(local.rows[i])
    # the chunk of four died twice (one retry), then the nan cell alone died twice: four deaths
    assert len(deaths.read_text().split()) == 4


def test_cli_matrix_ray_writes_the_same_csv(
    ray_local: Any, run_cli: Any, tree: dict[str, Path], tmp_path: Path
) -> None:
    def rows(path: Path) -> list[dict[str, str]]:
        return [{k: v for k, v in r.items() if k != "ms"} for r in csv.DictReader(path.open())]

    common = [str(tree["adapters"]), "--base", str(tree["base"]), "--base", str(tree["wide_base"])]
    code, _, err = run_cli(["matrix", *common, "--out", str(tmp_path / "local.csv")])
    assert code == 0, err
    code, out, err = run_cli(
        ["matrix", *common, "--out", str(tmp_path / "ray.csv"), "--html", str(tmp_path / "ray.html"), "--ray"]
    )
    assert code == 0, err
    assert "4 adapter(s) × 2 base(s) = 8 checks" in out and "ray)" in out
    assert rows(tmp_path / "ray.csv") == rows(tmp_path / "local.csv")
    assert "<svg" in (tmp_path / "ray.html").read_text()
    code, _, err = run_cli(["matrix", *common, "--out", str(tmp_path / "ray.csv"), "--ray"])
    assert code == 2 and "--overwrite" in err
