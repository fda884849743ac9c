"""The bases behind the fault cases, built once per work folder, and the helpers the case builders share.

A `BaseFixture` builds each base folder the first time a case asks for it: the tiny Qwen2 (with
its tokenizer), a SEQ_CLS twin, tiny Phi3 (fused `qkv_proj`/`gate_up_proj`) and GPT-2 (`Conv1D`)
bases, and config-only folders with the real numbers of catalog-sized Qwen models. Bases that an
adapter is only *trained* on (a wider or deeper Qwen2, a bigger vocabulary) live in memory only.
Needs the `ml` extra; torch and transformers are imported inside functions.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loraguard.demo.faults_scaled import CATALOG_CONFIGS, write_config_only_base
from loraguard.demo.tiny import build_tiny_base, edit_adapter_config, tiny_qwen2_config, train_tokenizer

WEIGHTS_FILE = "adapter_model.safetensors"
BIN_FILE = "adapter_model.bin"
CONFIG_FILE = "adapter_config.json"

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


@dataclass
class BaseFixture:
    """The shared bases of one work folder. `path(key)` builds a base folder on first use."""

    root: Path
    tokenizer: Any
    paths: dict[str, Path] = field(default_factory=dict)
    _models: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def tiny(self) -> Path:
        return self.path(TINY)

    def path(self, key: str) -> Path:
        """The folder of base `key` (config.json, plus weights and tokenizer for the tiny ones)."""
        if key not in self.paths:
            out = self.root / key
            if not (out / "config.json").is_file():
                with quiet():
                    _FOLDER_BUILDERS[key](self, out)
            self.paths[key] = out
        return self.paths[key]

    def name(self, key: str) -> str:
        """The hub-style identity of base `key` (its config's `_name_or_path`)."""
        if key in NAMES:
            return NAMES[key]
        return str(CATALOG_CONFIGS[key]["_name_or_path"])

    def model(self, key: str) -> Any:
        """A fresh in-memory copy of base `key` (PEFT wraps models in place, so never the cached one)."""
        if key not in self._models:
            with quiet():
                self._models[key] = _MODEL_MAKERS[key](self)
        return copy.deepcopy(self._models[key])


def build_fixture(root: Path) -> BaseFixture:
    """Train the tokenizer (or reuse the one saved with an existing tiny base) and build the tiny base."""
    root = Path(root)
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


@contextmanager
def quiet() -> Iterator[None]:
    """Silence PEFT/transformers warnings, info logs and progress bars while building fixtures."""
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


# --- base folders -------------------------------------------------------------------------------


def _tiny_folder(fx: BaseFixture, out: Path) -> None:
    build_tiny_base(out, tokenizer=fx.tokenizer, name=NAMES[TINY])


def _seq_cls_folder(fx: BaseFixture, out: Path) -> None:
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


# --- in-memory models ---------------------------------------------------------------------------


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


# --- adapters -----------------------------------------------------------------------------------


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

    Defaults as `tiny.save_lora_adapter`: r=8, alpha 16, q/v, random non-zero A and B. The config's
    `base_model_name_or_path` is set to `claim`. `embeddings` is passed as `save_embedding_layers`:
    False by default because PEFT's "auto" looks the claimed base up on the Hub; pass "auto" where
    an embedding is targeted (PEFT then saves it without any look-up). `init_lora_weights` is
    recorded as `true`, as in a trained adapter: otherwise PEFT would give any module whose keys are
    missing random weights at load time instead of a zero (no-op) B. PEFT's generated README.md
    (whose `base_model:` is a temp path) is removed: only the provenance case carries a model card.
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
    """The adapter's safetensors as numpy arrays (float32 files only)."""
    from safetensors.numpy import load_file

    return dict(load_file(adapter_dir / WEIGHTS_FILE))


def write_tensors(adapter_dir: Path, tensors: Mapping[str, Any]) -> None:
    """Rewrite the adapter's safetensors (with PEFT's `format: pt` metadata)."""
    from safetensors.numpy import save_file

    save_file(dict(tensors), adapter_dir / WEIGHTS_FILE, metadata={"format": "pt"})


def rename_keys(adapter_dir: Path, old: str, new: str) -> None:
    tensors = read_tensors(adapter_dir)
    write_tensors(adapter_dir, {k.replace(old, new): v for k, v in tensors.items()})


def drop_keys(adapter_dir: Path, needle: str) -> None:
    tensors = read_tensors(adapter_dir)
    write_tensors(adapter_dir, {k: v for k, v in tensors.items() if needle not in k})


def stamp_json(path: Path, changes: Mapping[str, Any]) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data, indent=2) + "\n")
