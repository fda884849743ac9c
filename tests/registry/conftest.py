"""Registry fixtures: a fresh SQLite registry URL, a fake adapter folder and a base folder per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# `registry_helpers` is importable because pytest puts this folder on sys.path for the test modules here
# (no __init__.py); spawned worker processes inherit that sys.path.


@pytest.fixture
def url(tmp_path: Path) -> str:
    pytest.importorskip("sqlalchemy")
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture
def reg(url: str) -> Iterator[object]:
    from loraguard.registry import Registry

    with Registry(url, lock_timeout=5) as registry:
        yield registry


@pytest.fixture
def adapter(tmp_path: Path) -> Path:
    from registry_helpers import make_adapter

    return make_adapter(tmp_path / "adapters" / "tox", nested=True)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    from registry_helpers import make_base

    return make_base(tmp_path / "bases" / "qwen")
