"""Fixtures for the guarded load: the demo's adapters (built once per worker) and a model's full state."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory, one_torch_thread: None) -> dict[str, Any]:
    """`loraguard.demo.cases.build_cases`: case name -> (adapter folder, base folder); and the tokenizer."""
    pytest.importorskip("torch")
    from loraguard.demo.cases import build_cases
    from loraguard.demo.tiny import quiet

    with quiet():
        built = build_cases(tmp_path_factory.mktemp("guard-demo"))
    return {name: (case.adapter, case.base) for name, case in built.items()}


@pytest.fixture
def load_base() -> Callable[[Path], Any]:
    """A fresh model from a base folder, of the class its config names (eval mode, warnings and bars off)."""

    def load(folder: Path) -> Any:
        import json

        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

        from loraguard.demo.tiny import quiet

        archs = json.loads((folder / "config.json").read_text()).get("architectures") or []
        seq_cls = any(a.endswith("ForSequenceClassification") for a in archs)
        loader = AutoModelForSequenceClassification if seq_cls else AutoModelForCausalLM
        with quiet():
            return loader.from_pretrained(folder).eval()

    return load
