from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def built_cases(tmp_path_factory: pytest.TempPathFactory) -> dict:
    pytest.importorskip("torch")
    from loraguard.demo.faults import build_all
    from loraguard.demo.faults_bases import quiet

    with quiet():
        return build_all(Path(tmp_path_factory.mktemp("fault-cases")))
