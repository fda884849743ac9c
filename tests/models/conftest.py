"""Fixtures for `loraguard.models`: a private cache, a tiny GGUF and a wheel holding it."""

from __future__ import annotations

from pathlib import Path

import pytest
from model_files import known_model, write_tiny_gguf, write_wheel

from loraguard.models.catalog import KnownModel


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, empty `LORAGUARD_CACHE` for the test."""
    root = tmp_path / "cache"
    monkeypatch.setenv("LORAGUARD_CACHE", str(root))
    return root


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("gguf")
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="session")
def tiny_wheel(tmp_path_factory: pytest.TempPathFactory, tiny_gguf: Path) -> Path:
    return write_wheel(tmp_path_factory.mktemp("wheelhouse"), tiny_gguf)


@pytest.fixture(scope="session")
def tiny_model(tiny_wheel: Path, tiny_gguf: Path) -> KnownModel:
    return known_model(tiny_wheel, tiny_gguf)
