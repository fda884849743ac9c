"""Fixtures for the Ray tests: one local Ray instance per test session, and Ray work serialised.

CI runs `pytest -n 2`: each xdist worker is its own process, so each starts its own local Ray
(`num_cpus=2`, no dashboard, worker logs not forwarded, a short private temp dir: Ray's socket paths
must stay under 107 characters). Two instances scoring at once on a 2-core machine would only slow
each other down, so every test that uses Ray holds a machine-wide file lock while it runs; the idle
instance costs memory, not CPU. Tests that need no cluster (the actor class called in-process, the
driver's checks) do not take the lock.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "report"))

LOCK = Path(tempfile.gettempdir()) / "loraguard-ray-tests.lock"


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread(one_torch_thread: None) -> None:
    """Every test here runs with one torch thread (see tests/conftest.py)."""


@pytest.fixture(scope="session")
def rows_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 24 built-in labelled rows (`write_rows_csv`)."""
    from loraguard.demo.pipeline import write_rows_csv

    return write_rows_csv(tmp_path_factory.mktemp("rows") / "rows.csv")


@pytest.fixture(scope="session")
def _ray_instance() -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'loraguard[ray]'")
    pytest.importorskip("ray.data")
    pytest.importorskip("pyarrow")
    import ray_faults
    from ray import cloudpickle

    temp = tempfile.mkdtemp(prefix="lgray-")
    cloudpickle.register_pickle_by_value(ray_faults)  # the actors cannot import the tests folder
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=temp)
    yield ray
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture()
def ray_local(_ray_instance: Any) -> Iterator[Any]:
    """The session's Ray, held alone on this machine for the test (see the module docstring)."""
    from filelock import FileLock

    with FileLock(str(LOCK)):
        yield _ray_instance
