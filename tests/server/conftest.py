"""Server fixtures: the tiny probe base with healthy/degenerate/no-op adapters (built once per worker),
a fresh SQLite registry per test, and helpers to run the app with FastAPI's TestClient."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")


@pytest.fixture(scope="session")
def one_thread() -> Iterator[None]:
    """One torch thread: with `-n 2` on two cores, two workers of two threads each spin against each other."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def fx(tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> dict[str, Path]:
    """The probe fixture (base, healthy, degenerate, noop) plus a second healthy adapter and a .bin-only one."""
    from loraguard.demo.degenerate import build_probe_fixture
    from loraguard.demo.faults_bases import quiet, save_peft

    root = tmp_path_factory.mktemp("serve")
    with quiet():
        built = build_probe_fixture(root)
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(built.base))
        other = save_peft(model, root / "adapters" / "other", claim="loraguard/tiny-qwen2-probe", seed=7)
        model = AutoModelForCausalLM.from_pretrained(str(built.base))
        pickled = save_peft(model, root / "adapters" / "pickled", claim="loraguard/tiny-qwen2-probe", seed=8,
                            safe=False)
    return {"base": built.base, "healthy": built.healthy, "degenerate": built.degenerate, "noop": built.noop,
            "other": other, "pickled": pickled, "root": root}


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Any]:
    from loraguard.registry import Registry

    reg = Registry(f"sqlite:///{tmp_path / 'registry.db'}")
    yield reg
    reg.close()


def items_of(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Classify items carrying exactly the rows' fields."""
    return [{"body": r["body"], "rule": r["rule"], "subreddit": r["subreddit"],
             "positive_examples": [r["positive_example_1"], r["positive_example_2"]],
             "negative_examples": [r["negative_example_1"], r["negative_example_2"]]} for r in rows]


@pytest.fixture(scope="session")
def rows() -> list[dict[str, str]]:
    from loraguard.demo.rows import builtin_rows

    return [dict(r) for r in builtin_rows()]


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def adapters_json(client: Any) -> dict[str, Any]:
    response = client.get("/v1/adapters")
    assert response.status_code == 200, response.text
    return json.loads(response.text)


@pytest.fixture
def make_client(fx: dict[str, Path], registry: Any) -> Iterator[Callable[..., Any]]:
    """`make_client(**config)` → a started TestClient on the test's registry (stopped at teardown)."""
    from fastapi.testclient import TestClient

    from loraguard.server.app import create_app
    from loraguard.server.service import ServeConfig

    stack: list[Any] = []

    def make(registry_obj: Any = None, **overrides: Any) -> Any:
        config = ServeConfig(**{"base": str(fx["base"]), "reload_interval": 0.1, "max_wait_ms": 2.0,
                                "registry_url": registry.url, **overrides})
        app = create_app(config, registry=registry_obj or registry, seed=0)
        client = TestClient(app)
        client.__enter__()
        stack.append(client)
        return client

    yield make
    for client in reversed(stack):
        client.__exit__(None, None, None)


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of sample `name` with exactly these labels (label order does not matter), or None."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None
