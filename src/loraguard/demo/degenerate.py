"""Fixtures for `loraguard probe`: a tiny base with spread predictions and real PEFT adapters on it.

- the base: a random tiny Qwen2 with `initializer_range=0.5` (with the usual 0.02 a random model
  gives every prompt nearly the same P(Yes); with 0.5 its predictions on the built-in rows spread
  over [0, 1], mean about 0.5);
- `healthy`: a random rank-8 LoRA on q/v: it changes the outputs and they stay spread;
- `degenerate`: a rank-1 LoRA on `lm_head` whose B is scaled by 1e4: the update swamps the logits, so
  P(Yes) no longer depends on the input (every prediction is 0.0, the case study's symptom);
- `noop`: PEFT's default init, never trained (every lora_B zero): `check` reports `zero-adapter`,
  and `probe --force` reports `no-effect`;
- `nonfinite` (not in the fixture tuple): one NaN in an MLP LoRA, so the NaN reaches the logits;
- `write_blind_template`: a Jinja prompt template that never shows the comment, so every prompt is
  the same and the predictions are constant with or without an adapter.

Everything is built offline on the CPU (about five seconds, most of it importing torch). Needs
the `ml` extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "BASE_INIT_RANGE",
    "BASE_NAME",
    "ProbeFixture",
    "build_degenerate_adapter",
    "build_healthy_adapter",
    "build_nonfinite_adapter",
    "build_noop_adapter",
    "build_probe_base",
    "build_probe_fixture",
    "write_blind_template",
]

BASE_NAME = "loraguard/tiny-qwen2-probe"
BASE_INIT_RANGE = 0.5
BASE_SEED = 4  # a seed whose random base spreads P(Yes) under the chat prompt (probe tests rely on it)
DEGENERATE_SCALE = 1e4
NAN_KEY = "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight"

BLIND_TEMPLATE = (
    "You are a content moderator. Rule: posts must follow the community rules.\n"
    "Does the post violate the rule? Answer Yes or No.\nAnswer:"
)


class ProbeFixture(NamedTuple):
    """Folders built by `build_probe_fixture` (unpacks as `base, healthy, degenerate, noop`)."""

    base: Path
    healthy: Path
    degenerate: Path
    noop: Path


def build_probe_base(out: str | Path, *, tokenizer: Any | None = None) -> Path:
    """The tiny Qwen2 base whose own predictions on the built-in rows are spread out."""
    from loraguard.demo.faults_bases import quiet
    from loraguard.demo.tiny import build_tiny_base

    with quiet():
        return build_tiny_base(
            out, seed=BASE_SEED, tokenizer=tokenizer, name=BASE_NAME, initializer_range=BASE_INIT_RANGE
        )


def _save(base: Path, out: str | Path, **lora_kwargs: Any) -> Path:
    from transformers import AutoModelForCausalLM

    from loraguard.demo.faults_bases import quiet, save_peft

    with quiet():
        model = AutoModelForCausalLM.from_pretrained(str(base))
    return save_peft(model, Path(out), claim=_name_of(base), **lora_kwargs)


def _name_of(base: Path) -> str:
    import json

    data = json.loads((base / "config.json").read_text(encoding="utf-8"))
    return str(data.get("_name_or_path") or base.name)


def build_healthy_adapter(base: str | Path, out: str | Path) -> Path:
    """A random rank-8 LoRA on q_proj/v_proj: it moves every prediction, and they stay spread."""
    return _save(Path(base), out, seed=1)


def build_degenerate_adapter(base: str | Path, out: str | Path, *, scale: float = DEGENERATE_SCALE) -> Path:
    """A rank-1 LoRA on `lm_head` with B scaled by `scale`: the update dwarfs the base's logits, so the
    answer no longer depends on the input (P(Yes) is the same, here 0.0, for every row)."""
    from loraguard.demo.faults_bases import read_tensors, write_tensors

    path = _save(Path(base), out, seed=2, r=1, lora_alpha=1, target_modules=["lm_head"])
    tensors = read_tensors(path)
    write_tensors(path, {k: v * scale if ".lora_B." in k else v for k, v in tensors.items()})
    return path


def build_noop_adapter(base: str | Path, out: str | Path) -> Path:
    """PEFT's default init, never trained: every lora_B is zero, so the adapter changes nothing."""
    return _save(Path(base), out, seed=3, init_lora_weights=True)


def build_nonfinite_adapter(base: str | Path, out: str | Path) -> Path:
    """A LoRA on down_proj with one NaN in layer 0's lora_A: the NaN reaches every logit.

    (An MLP LoRA, because CPU SDPA attention can turn a NaN query into finite outputs.)
    """
    from loraguard.demo.faults_bases import read_tensors, write_tensors

    path = _save(Path(base), out, seed=4, target_modules=["down_proj"])
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


def build_probe_fixture(workdir: str | Path) -> ProbeFixture:
    """Build the base and the healthy, degenerate and no-op adapters under `workdir`."""
    root = Path(workdir)
    base = build_probe_base(root / "base")
    adapters = root / "adapters"
    return ProbeFixture(
        base=base,
        healthy=build_healthy_adapter(base, adapters / "healthy"),
        degenerate=build_degenerate_adapter(base, adapters / "degenerate"),
        noop=build_noop_adapter(base, adapters / "noop"),
    )
