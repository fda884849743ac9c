"""The demo's model steps' fixtures: a tiny base with spread predictions and real PEFT adapters on it.

- the base: a random tiny Qwen2 with `initializer_range=0.5` (with the usual 0.02 a random model
  gives every prompt nearly the same P(Yes); with 0.5 its predictions on the built-in rows spread
  over [0, 1], mean about 0.5), whose answer words' output rows are then shifted so that it answers
  with them as an instruction-tuned model does (most of the probability on Yes/No), without
  changing any P(Yes) (`answer_in_words`);
- `healthy`: a random rank-8 LoRA on q/v: it changes the outputs and they stay spread;
- `degenerate`: a rank-1 LoRA on `lm_head` whose B is scaled by 1e4: the update swamps the logits, so
  P(Yes) no longer depends on the input (every prediction is 0.0, the case study's symptom).

Everything is built offline on the CPU (about five seconds, most of it importing torch). Needs
the `ml` extra.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "BASE_INIT_RANGE",
    "BASE_NAME",
    "ProbeFixture",
    "answer_in_words",
    "build_degenerate_adapter",
    "build_healthy_adapter",
    "build_probe_base",
    "build_probe_fixture",
    "save_adapter",
]

BASE_NAME = "loraguard/tiny-qwen2-probe"
BASE_INIT_RANGE = 0.5
BASE_SEED = 4  # a seed whose random base spreads P(Yes) under the chat prompt (probe tests rely on it)
DEGENERATE_SCALE = 1e4
ANSWER_SHIFT = 4.0
"""How far `answer_in_words` moves the answer tokens' output rows (the base then puts ~95% of its mass on them)."""


class ProbeFixture(NamedTuple):
    """Folders built by `build_probe_fixture` (unpacks as `base, healthy, degenerate`)."""

    base: Path
    healthy: Path
    degenerate: Path


def build_probe_base(out: str | Path, *, tokenizer: Any | None = None) -> Path:
    """The tiny Qwen2 base whose own predictions on the built-in rows are spread out."""
    from loraguard.demo.tiny import build_tiny_base, quiet

    with quiet():
        path = build_tiny_base(
            out, seed=BASE_SEED, tokenizer=tokenizer, name=BASE_NAME, initializer_range=BASE_INIT_RANGE
        )
        answer_in_words(path)
    return path


def answer_in_words(base: str | Path, shift: float = ANSWER_SHIFT) -> Path:
    """Make the model at `base` put most of its probability on the answer words, leaving every P(Yes)
    as it was (a random model spreads its probability over the whole vocabulary: the answer tokens
    would get about 0.03% of it, which `score` and `probe` rightly call answer words the model ignores).

    The output embedding is untied and the same vector, `shift` times the mean direction of the
    final hidden state at the answer position (built-in rows, chat template), is added to the row of
    every answer token: each answer logit rises by the same amount for a given row, so the ratio
    P(Yes) = p(Yes) / (p(Yes) + p(No)) is unchanged while the answer tokens' share of the mass rises.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from loraguard.scoring.answers import answer_tokens
    from loraguard.scoring.api import encode_prompts
    from loraguard.scoring.builtin_rows import builtin_rows

    path = Path(base)
    tok = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path)).eval()
    name = _name_of(path)
    encoded = encode_prompts(tok, builtin_rows(), "chat")
    answers = answer_tokens(tok)
    ids = torch.tensor([*answers.positive_ids, *answers.negative_ids])
    with torch.no_grad():
        last = [
            model(input_ids=torch.tensor([list(x)]), output_hidden_states=True).hidden_states[-1][0, -1]
            for x in encoded.input_ids
        ]
        direction = torch.stack(last).mean(0)
        head = model.get_output_embeddings().weight.detach().clone()
        head[ids] += shift * direction / direction.norm()
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(head)
    model.save_pretrained(str(path))
    config = path / "config.json"  # transformers 5 writes no `_name_or_path`: keep the base's identity
    config.write_text(json.dumps({**json.loads(config.read_text()), "_name_or_path": name}, indent=2) + "\n")
    return path


def save_adapter(base: str | Path, out: str | Path, **lora_kwargs: Any) -> Path:
    """A real PEFT LoRA (`tiny.save_peft` keyword arguments) for the base folder `base`, claiming it."""
    from transformers import AutoModelForCausalLM

    from loraguard.demo.tiny import quiet, save_peft

    with quiet():
        model = AutoModelForCausalLM.from_pretrained(str(base))
    return save_peft(model, Path(out), claim=_name_of(Path(base)), **lora_kwargs)


def _name_of(base: Path) -> str:
    data = json.loads((base / "config.json").read_text(encoding="utf-8"))
    return str(data.get("_name_or_path") or base.name)


def build_healthy_adapter(base: str | Path, out: str | Path) -> Path:
    """A random rank-8 LoRA on q_proj/v_proj: it moves every prediction, and they stay spread."""
    return save_adapter(base, out, seed=1)


def build_degenerate_adapter(base: str | Path, out: str | Path, *, scale: float = DEGENERATE_SCALE) -> Path:
    """A rank-1 LoRA on `lm_head` with B scaled by `scale`: the update dwarfs the base's logits, so the
    answer no longer depends on the input (P(Yes) is the same, here 0.0, for every row)."""
    from loraguard.demo.tiny import read_tensors, write_tensors

    path = save_adapter(base, out, seed=2, r=1, lora_alpha=1, target_modules=["lm_head"])
    tensors = read_tensors(path)
    write_tensors(path, {k: v * scale if ".lora_B." in k else v for k, v in tensors.items()})
    return path


def build_probe_fixture(workdir: str | Path) -> ProbeFixture:
    """Build the base and the healthy and degenerate adapters under `workdir`."""
    root = Path(workdir)
    base = build_probe_base(root / "base")
    adapters = root / "adapters"
    return ProbeFixture(
        base=base,
        healthy=build_healthy_adapter(base, adapters / "healthy"),
        degenerate=build_degenerate_adapter(base, adapters / "degenerate"),
    )
