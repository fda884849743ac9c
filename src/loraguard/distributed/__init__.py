"""Scale-out on Ray (the optional `ray` extra): the Ray executors of the score and matrix pipelines.

    from loraguard.distributed import RayExecutor, RayMatrixExecutor, RayScoreOptions
    from loraguard.matrix import run_matrix
    from loraguard.scoring import ScoreOptions, score_file

    report = score_file("train.csv", "./base", ["./fold0", "./fold1"], ScoreOptions(out="pred.parquet"),
                        executor=RayExecutor(RayScoreOptions(address="auto", workers=8, gpus_per_worker=1)))
    result = run_matrix(["./adapters"], ["Qwen/Qwen2.5-1.5B-Instruct"],
                        executor=RayMatrixExecutor(address="ray://head:10001"))

- `cluster.py`: importing Ray (`MissingExtraError` without the extra) and connecting (`DistributedError`
  with what to do when the cluster cannot be reached);
- `score.py` (`RayExecutor`), `worker.py` (the scoring actor), `collect.py` (the driver's half): Ray Data
  scoring with an actor pool, planned and finished by `loraguard.scoring.score_file` like a local run;
- `matrix.py` (`RayMatrixExecutor`): adapter × base checks as Ray tasks, for `loraguard.matrix.run_matrix`;
- `io.py`: CSV or Parquet in.

Importing this package does not import Ray (nor torch): the executors do, when they run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loraguard.distributed.cluster import RaySession, import_ray, ray_available, ray_session
    from loraguard.distributed.matrix import RayMatrixExecutor
    from loraguard.distributed.score import RayExecution, RayExecutor, RayScoreOptions
    from loraguard.distributed.worker import BatchScorer

__all__ = [
    "BatchScorer",
    "RayExecution",
    "RayExecutor",
    "RayMatrixExecutor",
    "RayScoreOptions",
    "RaySession",
    "import_ray",
    "ray_available",
    "ray_session",
]

_WHERE = {
    "BatchScorer": "worker",
    "RayExecution": "score",
    "RayExecutor": "score",
    "RayScoreOptions": "score",
    "RaySession": "cluster",
    "import_ray": "cluster",
    "ray_available": "cluster",
    "ray_session": "cluster",
    "RayMatrixExecutor": "matrix",
}


def __getattr__(name: str) -> Any:
    """Lazy attributes: `loraguard.distributed.RayExecutor` imports its module on first use."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'loraguard.distributed' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"loraguard.distributed.{module}"), name)
