"""Fault cases for `probe` (the LG6xx rules): the demo's tiny base and its healthy and degenerate
adapters (`loraguard.demo.degenerate`), plus what only the tests need:

- `noop`: PEFT's default init, never trained (every lora_B zero): `check` reports `zero-adapter`,
  and `probe --force` reports `no-effect`;
- `build_nonfinite_adapter`: one NaN in an MLP LoRA, so the NaN reaches the logits;
- `write_blind_template`: a Jinja prompt template that never shows the comment, so every prompt is
  the same and the predictions are constant with or without an adapter.

Needs torch (the models run).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

NAN_KEY = "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight"
BLIND_TEMPLATE = (
    "You are a content moderator. Rule: posts must follow the community rules.\n"
    "Does the post violate the rule? Answer Yes or No.\nAnswer:"
)


class ProbeModels(NamedTuple):
    """Folders built by `build_probe_models` (unpacks as `base, healthy, degenerate, noop`)."""

    base: Path
    healthy: Path
    degenerate: Path
    noop: Path


def build_probe_models(workdir: str | Path) -> ProbeModels:
    """The demo's probe fixture under `workdir`, and the no-op adapter beside its adapters."""
    from loraguard.demo.degenerate import build_probe_fixture

    fx = build_probe_fixture(workdir)
    return ProbeModels(*fx, noop=build_noop_adapter(fx.base, Path(workdir) / "adapters" / "noop"))


def build_noop_adapter(base: str | Path, out: str | Path) -> Path:
    """PEFT's default init, never trained: every lora_B is zero, so the adapter changes nothing."""
    from loraguard.demo.degenerate import save_adapter

    return save_adapter(base, out, seed=3, init_lora_weights=True)


def build_nonfinite_adapter(base: str | Path, out: str | Path) -> Path:
    """A LoRA on down_proj with one NaN in layer 0's lora_A: the NaN reaches every logit.

    (An MLP LoRA, because CPU SDPA attention can turn a NaN query into finite outputs.)
    """
    from loraguard.demo.degenerate import save_adapter
    from loraguard.demo.tiny import read_tensors, write_tensors

    path = save_adapter(base, out, seed=4, target_modules=["down_proj"])
    tensors = read_tensors(path)
    tensors[NAN_KEY][0, 0] = float("nan")
    write_tensors(path, tensors)
    return path


def write_blind_template(path: str | Path) -> Path:
    """A Jinja prompt template that never shows the comment (or anything else of the row)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(BLIND_TEMPLATE, encoding="utf-8")
    return out
