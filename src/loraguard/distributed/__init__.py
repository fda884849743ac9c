"""Scale-out on Ray (the optional `ray` extra): `loraguard score --ray` and `loraguard matrix --ray`.

    from loraguard.distributed import RayScoreOptions, score_distributed, run_matrix_ray
    report = score_distributed("train.csv", "./base", ["./fold0", "./fold1"], out="pred.parquet",
                               ray=RayScoreOptions(address="auto", workers=8, gpus_per_worker=1))
    result = run_matrix_ray(["./adapters"], ["Qwen/Qwen2.5-1.5B-Instruct"], address="ray://head:10001")

- `cluster.py`: importing Ray (`MissingExtraError` without the extra) and connecting (`DistributedError`
  with what to do when the cluster cannot be reached);
- `score.py`, `worker.py`, `collect.py`: Ray Data scoring with an actor pool, the same guarantees as
  `loraguard.scoring.score_file`;
- `matrix.py`: adapter × base checks as Ray tasks;
- `io.py`: CSV or Parquet in and out.

Importing this package does not import Ray (nor torch): the functions do, when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loraguard.distributed.cluster import RaySession, import_ray, ray_available, ray_session
    from loraguard.distributed.matrix import run_matrix_ray
    from loraguard.distributed.score import DistributedScoreReport, RayScoreOptions, score_distributed
    from loraguard.distributed.worker import BatchScorer

__all__ = [
    "BatchScorer",
    "DistributedScoreReport",
    "RayScoreOptions",
    "RaySession",
    "import_ray",
    "ray_available",
    "ray_session",
    "run_matrix_ray",
    "score_distributed",
]

_WHERE = {
    "BatchScorer": "worker",
    "DistributedScoreReport": "score",
    "RayScoreOptions": "score",
    "score_distributed": "score",
    "RaySession": "cluster",
    "import_ray": "cluster",
    "ray_available": "cluster",
    "ray_session": "cluster",
    "run_matrix_ray": "matrix",
}


def __getattr__(name: str) -> Any:
    """Lazy attributes: `loraguard.distributed.score_distributed` imports its module on first use."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'loraguard.distributed' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"loraguard.distributed.{module}"), name)
