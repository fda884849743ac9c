"""Server fixtures: the tiny probe base with healthy/degenerate/no-op adapters (built once per worker),
a fresh SQLite registry per test, and helpers to run the app with FastAPI's TestClient."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")


@pytest.fixture(scope="session")
def fx(tmp_path_factory: pytest.TempPathFactory, probe_models: Any) -> dict[str, Path]:
    """The probe models (base, healthy, degenerate, noop) plus a second healthy adapter and a .bin-only one."""
    from loraguard.demo.tiny import quiet, save_peft

    built = probe_models
    root = tmp_path_factory.mktemp("serve")
    with quiet():
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(built.base))
        other = save_peft(model, root / "adapters" / "other", claim="loraguard/tiny-qwen2-probe", seed=7)
        model = AutoModelForCausalLM.from_pretrained(str(built.base))
        pickled = save_peft(
            model, root / "adapters" / "pickled", claim="loraguard/tiny-qwen2-probe", seed=8, safe=False
        )
    return {
        "base": built.base,
        "healthy": built.healthy,
        "degenerate": built.degenerate,
        "noop": built.noop,
        "other": other,
        "pickled": pickled,
        "root": root,
    }


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Any]:
    from loraguard.registry import Registry

    reg = Registry(f"sqlite:///{tmp_path / 'registry.db'}")
    yield reg
    reg.close()


@pytest.fixture(scope="session")
def rows() -> list[dict[str, str]]:
    from loraguard.scoring.builtin_rows import builtin_rows

    return [dict(r) for r in builtin_rows()]


@pytest.fixture
def make_client(fx: dict[str, Path], registry: Any) -> Iterator[Callable[..., Any]]:
    """`make_client(**config)` → a started TestClient on the test's registry (stopped at teardown)."""
    from fastapi.testclient import TestClient

    from loraguard.server.app import create_app
    from loraguard.server.service import ServeConfig

    stack: list[Any] = []

    def make(registry_obj: Any = None, **overrides: Any) -> Any:
        config = ServeConfig(
            **{
                "base": str(fx["base"]),
                "reload_interval": 0.1,
                "max_wait_ms": 2.0,
                "registry_url": registry.url,
                **overrides,
            }
        )
        app = create_app(config, registry=registry_obj or registry, seed=0)
        client = TestClient(app)
        client.__enter__()
        stack.append(client)
        return client

    yield make
    for client in reversed(stack):
        client.__exit__(None, None, None)
