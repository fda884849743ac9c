"""Shared fixtures. `shared_dir` is the read-only `../shared` beside the repo; tests that need it skip."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def _find_shared() -> Path | None:
    env = os.environ.get("LORAGUARD_SHARED")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared")
    for candidate in candidates:
        if (candidate / "data").is_dir() or (candidate / "corpus").is_dir():
            return candidate
    return None


SHARED = _find_shared()


@pytest.fixture(scope="session")
def one_torch_thread() -> Iterator[None]:
    """One torch thread per xdist worker: two workers with two OpenMP threads each on two cores spin
    against each other and tiny forward passes get many times slower. A no-op without torch."""
    try:
        import torch
    except ImportError:  # pragma: no cover - the ml extra is absent
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def probe_models(tmp_path_factory: pytest.TempPathFactory, one_torch_thread: None) -> Any:
    """`build_probe_models` once per test process: a tiny base with spread predictions and its healthy,
    degenerate and no-op adapters (a `ProbeModels`). Shared read-only: copy a folder before changing it."""
    pytest.importorskip("torch")
    from fault_cases.probe_models import build_probe_models
    from loraguard.demo.tiny import quiet

    with quiet():
        return build_probe_models(tmp_path_factory.mktemp("probe-models"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if SHARED is None:
        pytest.skip(
            "../shared (real adapters, base configs, Jigsaw CSV) is absent beside the repo; "
            "set LORAGUARD_SHARED to its path to run this test"
        )
    return SHARED


@pytest.fixture(scope="session")
def jigsaw_train(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "jigsaw-acrc" / "train.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[[Sequence[str]], tuple[int, str, str]]:
    """`run_cli([...])` runs `loraguard ...` in-process and returns (exit code, stdout, stderr)."""
    from loraguard.cli.app import main

    def run(args: Sequence[str]) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run
