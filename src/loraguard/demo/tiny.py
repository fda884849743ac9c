"""Tiny Qwen2-architecture models built locally: random weights, a tokenizer trained on the fly.

Used by `loraguard demo`, the tests and the benchmarks, so nothing needs the Hugging Face Hub.
Needs the `ml` extra (torch, transformers, tokenizers, peft).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from loraguard.demo.rows import builtin_rows
from loraguard.errors import MissingExtraError

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def _corpus(extra: Iterable[str] = ()) -> list[str]:
    texts: list[str] = []
    for row in builtin_rows():
        texts.extend(row[k] for k in ("body", "rule", "positive_example_1", "negative_example_1"))
    texts += [
        "You are a content moderator. Does the post violate the rule? Answer Yes or No.",
        "Answer: Yes",
        "Answer: No",
        "Yes",
        "No",
        "yes",
        "no",
        " Yes",
        " No",
        "Probability: 0.0 0.1 0.25 0.5 0.75 0.9 1.0",
        "Rule: Post: Examples of violations:",
        "Examples of posts that do not violate the rule:",
        "system user assistant",
    ]
    texts.extend(extra)
    return texts * 4


def train_tokenizer(vocab_size: int = 1000, extra_texts: Iterable[str] = ()) -> Any:
    """A byte-level BPE tokenizer (GPT-2/Qwen style) trained in about a second, with a chat template."""
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
        from transformers import PreTrainedTokenizerFast
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError("Building tiny models", "ml") from exc

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(extra_texts), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        additional_special_tokens=["<|im_start|>"],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "left"
    return fast


def tiny_qwen2_config(
    *,
    vocab_size: int,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    initializer_range: float = 0.02,
    name: str = "loraguard/tiny-qwen2",
    **overrides: Any,
) -> Any:
    """A `Qwen2Config` for a model small enough to build and run in well under a second."""
    from transformers import Qwen2Config

    cfg = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=4096,
        initializer_range=initializer_range,
        tie_word_embeddings=True,
        **overrides,
    )
    cfg.architectures = ["Qwen2ForCausalLM"]
    cfg._name_or_path = name
    return cfg


def build_tiny_base(
    out_dir: str | Path,
    *,
    seed: int = 0,
    tokenizer: Any | None = None,
    name: str = "loraguard/tiny-qwen2",
    task: str = "CAUSAL_LM",
    **config_kwargs: Any,
) -> Path:
    """Build a random tiny Qwen2 model and save it with its tokenizer to `out_dir` (returned).

    `task="SEQ_CLS"` saves a `Qwen2ForSequenceClassification` (2 labels) instead.
    """
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    except ImportError as exc:  # pragma: no cover
        raise MissingExtraError("Building tiny models", "ml") from exc

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = tokenizer if tokenizer is not None else train_tokenizer()
    cfg = tiny_qwen2_config(vocab_size=len(tok), name=name, **config_kwargs)
    cfg.pad_token_id = tok.pad_token_id
    cfg.eos_token_id = tok.eos_token_id
    torch.manual_seed(seed)
    if task == "SEQ_CLS":
        cfg.architectures = ["Qwen2ForSequenceClassification"]
        cfg.num_labels = 2
        model = AutoModelForSequenceClassification.from_config(cfg)
    else:
        model = AutoModelForCausalLM.from_config(cfg)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    _stamp_name(out / "config.json", name)
    return out


def _stamp_name(config_path: Path, name: str) -> None:
    """transformers 5 no longer writes `_name_or_path`; the hub id is a base's identity, so keep it."""
    data = json.loads(config_path.read_text())
    data["_name_or_path"] = name
    config_path.write_text(json.dumps(data, indent=2) + "\n")


def save_lora_adapter(
    base_dir: str | Path,
    out_dir: str | Path,
    *,
    seed: int = 1,
    base_model_name_or_path: str | None = None,
    task: str = "CAUSAL_LM",
    **lora_kwargs: Any,
) -> Path:
    """Wrap the base at `base_dir` with a real PEFT `LoraConfig(**lora_kwargs)` and save the adapter.

    Defaults: r=8, q/v targets, `init_lora_weights=False` (random A and B, so the adapter is not
    the no-op that PEFT's default zero-initialised B would give).
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    loader = AutoModelForSequenceClassification if task == "SEQ_CLS" else AutoModelForCausalLM
    model = loader.from_pretrained(base_dir)
    kwargs: dict[str, Any] = {
        "r": 8,
        "lora_alpha": 16,
        "target_modules": ["q_proj", "v_proj"],
        "init_lora_weights": False,
        "task_type": task,
    }
    kwargs.update(lora_kwargs)
    torch.manual_seed(seed)
    peft_model = get_peft_model(model, LoraConfig(**kwargs))
    out = Path(out_dir)
    peft_model.save_pretrained(str(out))
    claimed = base_model_name_or_path or _config_name(Path(base_dir))
    edit_adapter_config(out, {"base_model_name_or_path": claimed})
    return out


def _config_name(base_dir: Path) -> str:
    data = json.loads((base_dir / "config.json").read_text())
    return str(data.get("_name_or_path") or base_dir.name)


def edit_adapter_config(adapter_dir: str | Path, changes: Mapping[str, Any], drop: Sequence[str] = ()) -> None:
    """Rewrite keys of `adapter_config.json` (used to build the 'config edited after training' cases)."""
    path = Path(adapter_dir) / "adapter_config.json"
    data = json.loads(path.read_text())
    data.update(changes)
    for key in drop:
        data.pop(key, None)
    path.write_text(json.dumps(data, indent=2) + "\n")
