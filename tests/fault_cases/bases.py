"""The bases behind the fault cases, built once per work folder, and how a case writes its LoRA.

A `BaseFixture` builds each base folder the first time a case asks for it. With torch
(`torch=True`, the default when torch, transformers and PEFT import): the tiny Qwen2 (with its
tokenizer), a SEQ_CLS twin, tiny Phi3 (fused `qkv_proj`/`gate_up_proj`) and GPT-2 (`Conv1D`)
bases, and adapters saved by real PEFT; bases that an adapter is only *trained* on (a wider or
deeper Qwen2, a bigger vocabulary) live in memory. Without torch (`torch=False`): the tiny bases
are `config.json` files with the same numbers, and `lora()` writes PEFT's format with numpy
(`peft_files.write_lora`), which is all the static `check` reads. Config-only folders with the
real numbers of catalog-sized Qwen models serve both.
"""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fault_cases.peft_files import CONFIG_FILE, Geometry, stamp_json, write_json, write_lora
from fault_cases.scaled import CATALOG_CONFIGS, write_config_only_base

# Keys of the bases a case can be checked against (folders) or trained on (memory only).
TINY = "tiny-qwen2"
TINY_SEQ_CLS = "tiny-qwen2-seqcls"
TINY_PHI3 = "tiny-phi3"
TINY_GPT2 = "tiny-gpt2"
WIDE = "tiny-qwen2-wide"  # memory only: hidden 96, 6 heads, 3 kv heads
DEEP = "tiny-qwen2-deep"  # memory only: 4 layers
BIG_VOCAB = "tiny-qwen2-bigvocab"  # memory only: tiny base with 64 tokens added
EXTRA_TOKENS = 64

NAMES = {
    TINY: "loraguard/tiny-qwen2",
    TINY_SEQ_CLS: "loraguard/tiny-qwen2-seqcls",
    TINY_PHI3: "loraguard/tiny-phi3",
    TINY_GPT2: "loraguard/tiny-gpt2",
    WIDE: "loraguard/tiny-qwen2-wide",
    DEEP: "loraguard/tiny-qwen2-deep",
    BIG_VOCAB: "loraguard/tiny-qwen2",
}

# The tiny Qwen2 family's shapes (`loraguard.demo.tiny.tiny_qwen2_config`): head dim 16.
GEOMETRY = {
    TINY: Geometry(hidden=64, q_out=64, kv_out=32, layers=2, intermediate=128),
    WIDE: Geometry(hidden=96, q_out=96, kv_out=48, layers=2, intermediate=192),
    DEEP: Geometry(hidden=64, q_out=64, kv_out=32, layers=4, intermediate=128),
}
TINY_VOCAB = 941
"""The vocabulary of the tokenizer `loraguard.demo.tiny.train_tokenizer` trains (the torch-free bases use it)."""


def torch_available() -> bool:
    """torch, transformers and PEFT all import: cases can be built with real PEFT."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers", "peft"))


@dataclass
class BaseFixture:
    """The shared bases of one work folder. `path(key)` builds a base folder on first use."""

    root: Path
    tokenizer: Any
    torch: bool = True
    """Real models and PEFT (else config-only tiny bases and numpy-written adapters)."""
    paths: dict[str, Path] = field(default_factory=dict)
    _models: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def tiny(self) -> Path:
        return self.path(TINY)

    def path(self, key: str) -> Path:
        """The folder of base `key` (config.json, plus weights and tokenizer for the tiny ones with torch)."""
        if key not in self.paths:
            out = self.root / key
            if not (out / "config.json").is_file():
                if self.torch:
                    from loraguard.demo.tiny import quiet

                    with quiet():
                        _FOLDER_BUILDERS[key](self, out)
                else:
                    _config_only_folder(key, out)
            self.paths[key] = out
        return self.paths[key]

    def name(self, key: str) -> str:
        """The hub-style identity of base `key` (its config's `_name_or_path`)."""
        if key in NAMES:
            return NAMES[key]
        return str(CATALOG_CONFIGS[key]["_name_or_path"])

    def model(self, key: str) -> Any:
        """A fresh in-memory copy of base `key` (PEFT wraps models in place, so never the cached one)."""
        if not self.torch:
            raise RuntimeError(f"base model {key!r} needs torch: this fixture is torch-free")
        if key not in self._models:
            from loraguard.demo.tiny import quiet

            with quiet():
                self._models[key] = _MODEL_MAKERS[key](self)
        return copy.deepcopy(self._models[key])

    def lora(self, out: Path, key: str = TINY, *, claim: str | None = None, **lora_kwargs: Any) -> Path:
        """A LoRA for base `key` (TINY, WIDE or DEEP) in `out`, claiming `claim` (default: that base):
        saved by real PEFT with torch, written by numpy without. `lora_kwargs` are `LoraConfig` fields
        (`r`, `target_modules`, `rank_pattern`, `layers_to_transform`, `init_lora_weights`...)."""
        claim = claim or self.name(key)
        if self.torch:
            from loraguard.demo.tiny import save_peft

            return save_peft(self.model(key), out, claim=claim, **lora_kwargs)
        return write_lora(out, GEOMETRY[key], claim=claim, **lora_kwargs)


def build_fixture(root: Path, *, torch: bool | None = None) -> BaseFixture:
    """The bases of work folder `root`; with torch (default: when it imports), train the tokenizer (or
    reuse the one saved with an existing tiny base) and build the tiny base."""
    root = Path(root)
    use_torch = torch_available() if torch is None else torch
    if not use_torch:
        fixture = BaseFixture(root=root, tokenizer=None, torch=False)
        fixture.path(TINY)
        return fixture
    from loraguard.demo.tiny import quiet, train_tokenizer

    tiny_dir = root / TINY
    with quiet():
        if (tiny_dir / "config.json").is_file() and (tiny_dir / "tokenizer.json").is_file():
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
        else:
            tokenizer = train_tokenizer()
    fixture = BaseFixture(root=root, tokenizer=tokenizer)
    fixture.path(TINY)
    return fixture


# --- base folders -------------------------------------------------------------------------------


def tiny_config(key: str = TINY) -> dict[str, Any]:
    """The `config.json` the tiny Qwen2 base (or its SEQ_CLS twin) is saved with, without torch."""
    g = GEOMETRY[TINY]
    config: dict[str, Any] = {
        "_name_or_path": NAMES[key],
        "architectures": ["Qwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": None,
        "dtype": "float32",
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": g.hidden,
        "initializer_range": 0.02,
        "intermediate_size": g.intermediate,
        "layer_types": ["full_attention"] * g.layers,
        "max_position_embeddings": 4096,
        "max_window_layers": 28,
        "model_type": "qwen2",
        "num_attention_heads": 4,
        "num_hidden_layers": g.layers,
        "num_key_value_heads": 2,
        "pad_token_id": 0,
        "rms_norm_eps": 1e-06,
        "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"},
        "sliding_window": None,
        "tie_word_embeddings": True,
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": TINY_VOCAB,
    }
    if key == TINY_SEQ_CLS:
        config["architectures"] = ["Qwen2ForSequenceClassification"]  # 2 labels, transformers' default
    return config


def _config_only_folder(key: str, out: Path) -> None:
    if key in CATALOG_CONFIGS:
        write_config_only_base(out, key)
        return
    if key not in (TINY, TINY_SEQ_CLS):
        raise RuntimeError(f"base {key!r} needs torch: only the tiny Qwen2 bases have a torch-free config")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", tiny_config(key))


def _tiny_folder(fx: BaseFixture, out: Path) -> None:
    from loraguard.demo.tiny import build_tiny_base

    build_tiny_base(out, tokenizer=fx.tokenizer, name=NAMES[TINY])


def _seq_cls_folder(fx: BaseFixture, out: Path) -> None:
    from loraguard.demo.tiny import build_tiny_base

    build_tiny_base(out, tokenizer=fx.tokenizer, name=NAMES[TINY_SEQ_CLS], task="SEQ_CLS")


def _save_model_folder(fx: BaseFixture, key: str, out: Path) -> None:
    model = fx.model(key)
    model.save_pretrained(out)
    fx.tokenizer.save_pretrained(out)
    stamp_json(out / "config.json", {"_name_or_path": NAMES[key]})


def _catalog_folder(key: str) -> Callable[[BaseFixture, Path], None]:
    def build(fx: BaseFixture, out: Path) -> None:
        write_config_only_base(out, key)

    return build


_FOLDER_BUILDERS: dict[str, Callable[[BaseFixture, Path], None]] = {
    TINY: _tiny_folder,
    TINY_SEQ_CLS: _seq_cls_folder,
    TINY_PHI3: lambda fx, out: _save_model_folder(fx, TINY_PHI3, out),
    TINY_GPT2: lambda fx, out: _save_model_folder(fx, TINY_GPT2, out),
    **{key: _catalog_folder(key) for key in CATALOG_CONFIGS},
}


# --- in-memory models (torch) -------------------------------------------------------------------


def _load(fx: BaseFixture, key: str, seq_cls: bool = False) -> Any:
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    loader = AutoModelForSequenceClassification if seq_cls else AutoModelForCausalLM
    return loader.from_pretrained(fx.path(key))


def _from_config(cfg: Any, seed: int = 0) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(cfg)


def _phi3(fx: BaseFixture) -> Any:
    from transformers import Phi3Config

    tok = fx.tokenizer  # token ids inside the small vocabulary (Phi3's defaults are 32000)
    eos = tok.eos_token_id
    cfg = Phi3Config(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
        bos_token_id=eos,
        eos_token_id=eos,
    )
    cfg.architectures = ["Phi3ForCausalLM"]
    return _from_config(cfg)


def _gpt2(fx: BaseFixture) -> Any:
    from transformers import GPT2Config

    eos = fx.tokenizer.eos_token_id
    cfg = GPT2Config(
        vocab_size=len(fx.tokenizer),
        n_embd=64,
        n_layer=2,
        n_head=4,
        n_positions=512,
        bos_token_id=eos,
        eos_token_id=eos,
    )
    cfg.architectures = ["GPT2LMHeadModel"]
    return _from_config(cfg)


def _tiny_variant(**kwargs: Any) -> Callable[[BaseFixture], Any]:
    def make(fx: BaseFixture) -> Any:
        from loraguard.demo.tiny import tiny_qwen2_config

        return _from_config(tiny_qwen2_config(vocab_size=len(fx.tokenizer), **kwargs), seed=3)

    return make


def _big_vocab(fx: BaseFixture) -> Any:
    model = _load(fx, TINY)
    model.resize_token_embeddings(len(fx.tokenizer) + EXTRA_TOKENS, mean_resizing=False)
    return model


_MODEL_MAKERS: dict[str, Callable[[BaseFixture], Any]] = {
    TINY: lambda fx: _load(fx, TINY),
    TINY_SEQ_CLS: lambda fx: _load(fx, TINY_SEQ_CLS, seq_cls=True),
    TINY_PHI3: _phi3,
    TINY_GPT2: _gpt2,
    WIDE: _tiny_variant(hidden_size=96, num_heads=6, num_kv_heads=3, intermediate_size=192, name=NAMES[WIDE]),
    DEEP: _tiny_variant(num_layers=4, name=NAMES[DEEP]),
    BIG_VOCAB: _big_vocab,
}

__all__ = [
    "BIG_VOCAB",
    "CONFIG_FILE",
    "DEEP",
    "EXTRA_TOKENS",
    "TINY",
    "TINY_GPT2",
    "TINY_PHI3",
    "TINY_SEQ_CLS",
    "WIDE",
    "BaseFixture",
    "build_fixture",
    "torch_available",
]
