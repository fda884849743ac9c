from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def built_cases(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every fault case this environment can build: all with torch (real PEFT), the torch-free ones
    (numpy-written) without."""
    from fault_cases import build_all

    return build_all(Path(tmp_path_factory.mktemp("fault-cases")))
