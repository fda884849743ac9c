"""Tiny Qwen2-architecture models built locally: random weights, a tokenizer trained on the fly, and
real PEFT adapters saved for them.

Used by `loraguard demo`, the tests and the benchmarks, so nothing needs the Hugging Face Hub.
Needs the `ml` extra (torch, transformers, tokenizers, peft); they are imported inside functions.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loraguard.errors import MissingExtraError
from loraguard.scoring.builtin_rows import builtin_rows

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


@contextmanager
def quiet() -> Iterator[None]:
    """Silence PEFT/transformers warnings, info logs and progress bars while building models."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def save_peft(
    model: Any,
    out: Path,
    *,
    claim: str,
    seed: int = 1,
    safe: bool = True,
    embeddings: bool | str = False,
    **lora_kwargs: Any,
) -> Path:
    """Wrap `model` with a real PEFT `LoraConfig` and `save_pretrained` it to `out` (returned).

    Defaults as `save_lora_adapter`: r=8, alpha 16, q/v, random non-zero A and B. The config's
    `base_model_name_or_path` is set to `claim`. `embeddings` is passed as `save_embedding_layers`:
    False by default because PEFT's "auto" looks the claimed base up on the Hub; pass "auto" where
    an embedding is targeted (PEFT then saves it without any look-up). `init_lora_weights` is
    recorded as `true`, as in a trained adapter: otherwise PEFT would give any module whose keys are
    missing random weights at load time instead of a zero (no-op) B. PEFT's generated README.md
    (whose `base_model:` is a temp path) is removed.
    """
    import torch
    from peft import LoraConfig, get_peft_model

    kwargs: dict[str, Any] = {
        "r": 8,
        "lora_alpha": 16,
        "target_modules": ["q_proj", "v_proj"],
        "init_lora_weights": False,
        "task_type": "CAUSAL_LM",
    }
    kwargs.update(lora_kwargs)
    with quiet():
        torch.manual_seed(seed)
        peft_model = get_peft_model(model, LoraConfig(**kwargs))
        peft_model.save_pretrained(str(out), safe_serialization=safe, save_embedding_layers=embeddings)
    (out / "README.md").unlink(missing_ok=True)
    changes: dict[str, Any] = {"base_model_name_or_path": claim}
    if kwargs["init_lora_weights"] is False:
        changes["init_lora_weights"] = True  # what a trained adapter's config says (B was zero at start)
    edit_adapter_config(out, changes)
    return out


def read_tensors(adapter_dir: Path) -> dict[str, Any]:
    """The adapter's `adapter_model.safetensors` as numpy arrays (float32 files only)."""
    from safetensors.numpy import load_file

    return dict(load_file(Path(adapter_dir) / "adapter_model.safetensors"))


def write_tensors(adapter_dir: Path, tensors: Mapping[str, Any]) -> None:
    """Rewrite the adapter's `adapter_model.safetensors` (with PEFT's `format: pt` metadata)."""
    from safetensors.numpy import save_file

    save_file(dict(tensors), Path(adapter_dir) / "adapter_model.safetensors", metadata={"format": "pt"})
