"""Tiny models and adapters built once per session (per xdist worker) for the scoring tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scoring_helpers import write_csv

from loraguard.scoring.builtin_rows import builtin_rows


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread(one_torch_thread: None) -> None:
    """Every test here runs with one torch thread (see tests/conftest.py)."""


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny Qwen2 with spread-out P(Yes) (large initializer range)."""
    pytest.importorskip("torch")
    from loraguard.demo.tiny import build_tiny_base

    return build_tiny_base(
        tmp_path_factory.mktemp("base") / "tiny", hidden_size=64, num_layers=2, initializer_range=0.8, seed=0
    )


@pytest.fixture(scope="session")
def adapters(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two random LoRA adapters (`alpha`, `beta`) and one (`flat`) that makes every output the same:
    a huge bias on the last layer's down_proj LoRA swamps the hidden state before the final norm."""
    import torch
    from safetensors.torch import load_file, save_file

    from loraguard.demo.tiny import save_lora_adapter

    root = tmp_path_factory.mktemp("adapters")
    out = {
        "alpha": save_lora_adapter(tiny_base, root / "alpha", seed=1),
        "beta": save_lora_adapter(tiny_base, root / "beta", seed=2),
        "flat": save_lora_adapter(
            tiny_base,
            root / "flat",
            seed=3,
            r=1,
            lora_alpha=1,
            target_modules=["down_proj"],
            layers_to_transform=[1],
            lora_bias=True,
        ),
    }
    weights = out["flat"] / "adapter_model.safetensors"
    tensors = load_file(str(weights))
    gen = torch.Generator().manual_seed(0)
    tensors = {
        k: (torch.randn(v.shape, generator=gen) * 1e4 if k.endswith("lora_B.bias") else v) for k, v in tensors.items()
    }
    save_file(tensors, str(weights))
    return out


@pytest.fixture(scope="session")
def loaded(tiny_base: Path) -> Any:
    from loraguard.scoring.host import load_host

    return load_host(tiny_base, dtype="float32")  # the batching tests assert float32 exactness


@pytest.fixture(scope="session")
def rows_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(tmp_path_factory.mktemp("data") / "rows.csv", builtin_rows())


@pytest.fixture()
def cli() -> Iterator[Any]:
    """`main`, with the `score` command registered even if `COMMAND_MODULES` lacks it."""
    from loraguard.cli import app as cli_app
    from loraguard.cli import cmd_score

    cli_app._register_all()
    assert any(c.name == "score" for c in cli_app.app.registered_commands), cmd_score
    yield cli_app.main
