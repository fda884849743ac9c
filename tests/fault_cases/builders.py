"""Builders of the fault cases: each writes one adapter under `d`, then damages it.

Every builder has the signature `(d, fx) -> adapter folder`. The LoRA itself comes from
`fx.lora(...)`: real PEFT with torch, PEFT's format written by numpy without; the damage (renamed or
dropped keys, edited configs, NaN, truncated files...) is plain file surgery either way. Builders
that need torch whatever the fixture (`Case.torch`) call real PEFT or `torch.save` directly. The
table that names them, with the categories `check` must report, is in `__init__.py`.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fault_cases import pickles
from fault_cases.bases import BIG_VOCAB, DEEP, TINY, TINY_GPT2, TINY_PHI3, TINY_SEQ_CLS, WIDE, BaseFixture
from fault_cases.peft_files import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    Geometry,
    drop_keys,
    read_tensors,
    rename_keys,
    stamp_json,
    to_bf16,
    write_tensors,
)
from fault_cases.scaled import QWEN3_4B_GEOMETRY, QWEN25_05B_GEOMETRY, write_qv_adapter


def _tiny(d: Path, fx: BaseFixture, **lora_kwargs: Any) -> Path:
    """A LoRA on the tiny Qwen2 base, claiming that base."""
    return fx.lora(d, TINY, **lora_kwargs)


def edit_adapter_config(d: Path, changes: dict[str, Any]) -> None:
    stamp_json(d / CONFIG_FILE, changes)


def _save_peft(model: Any, d: Path, **kwargs: Any) -> Path:
    from loraguard.demo.tiny import save_peft

    return save_peft(model, d, **kwargs)


# --- healthy ------------------------------------------------------------------------------------


def plain(d: Path, fx: BaseFixture) -> Path:
    return _tiny(d, fx)


def all_linear(d: Path, fx: BaseFixture) -> Path:
    return _tiny(d, fx, target_modules="all-linear")


def dora(d: Path, fx: BaseFixture) -> Path:
    return _save_peft(fx.model(TINY), d, claim=fx.name(TINY), use_dora=True)


def rslora(d: Path, fx: BaseFixture) -> Path:
    return _tiny(d, fx, use_rslora=True)


def patterns(d: Path, fx: BaseFixture) -> Path:
    return _tiny(d, fx, rank_pattern={"q_proj": 4}, alpha_pattern={"q_proj": 8})


def lm_head_saved(d: Path, fx: BaseFixture) -> Path:
    # Tied embeddings: PEFT saves `base_model.model.lm_head.weight` (vocab, hidden), which fits.
    return _save_peft(fx.model(TINY), d, claim=fx.name(TINY), modules_to_save=["lm_head"])


def layer_subset(d: Path, fx: BaseFixture) -> Path:
    return _tiny(d, fx, layers_to_transform=[1])


def embedding_lora(d: Path, fx: BaseFixture) -> Path:
    # PEFT also saves the full `embed_tokens.base_layer.weight` here (save_embedding_layers=auto).
    return _save_peft(
        fx.model(TINY), d, claim=fx.name(TINY), target_modules=["embed_tokens", "q_proj"], embeddings="auto"
    )


def bin_tensors(d: Path, fx: BaseFixture) -> Path:
    return _save_peft(fx.model(TINY), d, claim=fx.name(TINY), safe=False)


def seq_cls(d: Path, fx: BaseFixture) -> Path:
    # task_type SEQ_CLS: PEFT adds modules_to_save ["classifier", "score"] and saves `score.weight`.
    return _save_peft(fx.model(TINY_SEQ_CLS), d, claim=fx.name(TINY_SEQ_CLS), task_type="SEQ_CLS")


def phi3_fused(d: Path, fx: BaseFixture) -> Path:
    return _save_peft(fx.model(TINY_PHI3), d, claim=fx.name(TINY_PHI3), target_modules=["qkv_proj", "gate_up_proj"])


def gpt2_conv1d(d: Path, fx: BaseFixture) -> Path:
    return _save_peft(fx.model(TINY_GPT2), d, claim=fx.name(TINY_GPT2), target_modules=["c_attn"], fan_in_fan_out=True)


def with_provenance(d: Path, fx: BaseFixture) -> Path:
    """A healthy adapter with the files a `transformers.Trainer` run leaves: model card and trainer state."""
    _tiny(d, fx)
    name = fx.name(TINY)
    (d / "README.md").write_text(
        f"---\nbase_model: {name}\nlibrary_name: peft\npipeline_tag: text-generation\ntags:\n"
        f"- base_model:adapter:{name}\n- lora\n- transformers\n---\n\n# tiny-qwen2 moderation LoRA\n\n"
        "Fine-tuned on the loraguard demo rows for 3 epochs.\n"
    )
    state = {
        "best_global_step": 30,
        "best_metric": 0.41,
        "best_model_checkpoint": "outputs/checkpoint-30",
        "epoch": 3.0,
        "eval_steps": 10,
        "global_step": 30,
        "is_hyper_param_search": False,
        "is_local_process_zero": True,
        "is_world_process_zero": True,
        "log_history": [
            {"epoch": 1.0, "grad_norm": 1.93, "learning_rate": 0.0002, "loss": 0.693, "step": 10},
            {"epoch": 2.0, "grad_norm": 1.41, "learning_rate": 0.0001, "loss": 0.52, "step": 20},
            {"epoch": 3.0, "grad_norm": 1.12, "learning_rate": 0.0, "loss": 0.41, "step": 30},
        ],
        "logging_steps": 10,
        "max_steps": 30,
        "num_input_tokens_seen": 0,
        "num_train_epochs": 3,
        "save_steps": 10,
        "total_flos": 1234.0,
        "train_batch_size": 8,
    }
    (d / "trainer_state.json").write_text(json.dumps(state, indent=2) + "\n")
    return d


def catalog_healthy(d: Path, fx: BaseFixture) -> Path:
    return write_qv_adapter(d, QWEN25_05B_GEOMETRY, claim="Qwen/Qwen2.5-0.5B-Instruct")


# --- wrong base ---------------------------------------------------------------------------------


def wider_base(d: Path, fx: BaseFixture) -> Path:
    """Trained on a Qwen2 with hidden 96 (6 heads, 3 kv heads); the config claims the tiny base."""
    return fx.lora(d, WIDE, claim=fx.name(TINY))


def extra_layers(d: Path, fx: BaseFixture) -> Path:
    """Trained on a 4-layer twin of the tiny base (same widths); claims the 2-layer tiny base."""
    return fx.lora(d, DEEP, claim=fx.name(TINY))


def fewer_layers(d: Path, fx: BaseFixture) -> Path:
    """Layer-1 tensors removed, `layers_to_transform` left unset."""
    plain(d, fx)
    drop_keys(d, ".layers.1.")
    return d


def nested_prefix(d: Path, fx: BaseFixture) -> Path:
    """Keys nested as a multimodal wrapper would name them (`language_model.model.layers...`)."""
    plain(d, fx)
    rename_keys(d, "base_model.model.model.layers.", "base_model.model.language_model.model.layers.")
    return d


def other_class_prefix(d: Path, fx: BaseFixture) -> Path:
    """Module paths of another model class (GPT-2's `transformer.h.N.attn`), leaf names kept."""
    plain(d, fx)
    rename_keys(d, "base_model.model.model.layers.", "base_model.model.transformer.h.")
    rename_keys(d, ".self_attn.", ".attn.")
    return d


def unknown_target(d: Path, fx: BaseFixture) -> Path:
    """A q-only adapter whose config and tensors say `query_key_value` (no such module in Qwen2)."""
    _tiny(d, fx, target_modules=["q_proj"])
    rename_keys(d, ".q_proj.", ".query_key_value.")
    edit_adapter_config(d, {"target_modules": ["query_key_value"]})
    return d


def stale_targets(d: Path, fx: BaseFixture) -> Path:
    """Trained with target_modules q_proj, v_proj and BERT's "query"/"value" (a recipe from another model):
    PEFT adapted q/v, ignored the other two names, and saved all four in the config."""
    return _tiny(d, fx, target_modules=["q_proj", "v_proj", "query", "value"])


def declared_missing(d: Path, fx: BaseFixture) -> Path:
    """Config targets q/k/v; the k_proj tensors were not saved."""
    _tiny(d, fx, target_modules=["q_proj", "k_proj", "v_proj"])
    drop_keys(d, ".k_proj.")
    return d


def rank_edited(d: Path, fx: BaseFixture) -> Path:
    plain(d, fx)
    edit_adapter_config(d, {"r": 16})
    return d


def rank_pattern_wrong(d: Path, fx: BaseFixture) -> Path:
    """Tensors are rank 8 everywhere; the config's `rank_pattern` says v_proj is rank 4."""
    plain(d, fx)
    edit_adapter_config(d, {"rank_pattern": {"v_proj": 4}})
    return d


# --- weights that do nothing or break -----------------------------------------------------------


def zero_init(d: Path, fx: BaseFixture) -> Path:
    """PEFT's default init, never trained: every lora_B is zero, so the adapter is a no-op."""
    return _tiny(d, fx, init_lora_weights=True)


def zero_empty(d: Path, fx: BaseFixture) -> Path:
    """Every tensor saved with shape [0], as `save_pretrained` under DeepSpeed ZeRO-3 does (peft#1710)."""
    plain(d, fx)
    write_tensors(d, {k: np.zeros((0,), dtype=np.float32) for k in read_tensors(d)})
    return d


def no_weights(d: Path, fx: BaseFixture) -> Path:
    plain(d, fx)
    (d / WEIGHTS_FILE).unlink()
    return d


NAN_KEY = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
INF_KEY = "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"


def nan_weight(d: Path, fx: BaseFixture) -> Path:
    plain(d, fx)
    tensors = read_tensors(d)
    tensors[NAN_KEY][0, 0] = float("nan")
    write_tensors(d, tensors)
    return d


def inf_bf16(d: Path, fx: BaseFixture) -> Path:
    """The adapter cast to bfloat16 (as many trainers save it), one lora_B element +Inf."""
    plain(d, fx)
    tensors = read_tensors(d)
    tensors[INF_KEY][3, 2] = float("inf")
    write_tensors(d, {k: to_bf16(v) for k, v in tensors.items()})
    return d


def vocab_bigger(d: Path, fx: BaseFixture) -> Path:
    """embed_tokens/lm_head saved (modules_to_save) from the tiny base with 64 tokens added."""
    return _save_peft(fx.model(BIG_VOCAB), d, claim=fx.name(TINY), modules_to_save=["lm_head", "embed_tokens"])


def seq_cls_no_head(d: Path, fx: BaseFixture) -> Path:
    seq_cls(d, fx)
    drop_keys(d, "score.")
    return d


SCORE_KEY = "base_model.model.score.weight"


def causal_with_head(d: Path, fx: BaseFixture) -> Path:
    """A CAUSAL_LM adapter that also carries a classification head `score.weight` (2, hidden)."""
    plain(d, fx)
    tensors = read_tensors(d)
    tensors[SCORE_KEY] = np.random.default_rng(5).standard_normal((2, 64)).astype(np.float32) * 0.02
    write_tensors(d, tensors)
    return d


UNKNOWN_FIELD = "lora_future_option"


def unknown_field(d: Path, fx: BaseFixture) -> Path:
    plain(d, fx)
    edit_adapter_config(d, {UNKNOWN_FIELD: True})
    return d


def unsafe_raw(d: Path, fx: BaseFixture) -> Path:
    plain(d, fx)
    (d / WEIGHTS_FILE).unlink()
    pickles.write_raw_pickle_bin(d)
    return d


def unsafe_zip(d: Path, fx: BaseFixture) -> Path:
    plain(d, fx)
    (d / WEIGHTS_FILE).unlink()
    pickles.write_zip_pickle_bin(d)
    return d


# --- unreadable ---------------------------------------------------------------------------------


def header_size(path: Path) -> int:
    """The safetensors header length (first 8 bytes, little-endian u64)."""
    return int(struct.unpack("<Q", path.read_bytes()[:8])[0])


def truncated(d: Path, fx: BaseFixture) -> Path:
    """The file cut in the middle of its tensor data (an interrupted upload or copy)."""
    plain(d, fx)
    path = d / WEIGHTS_FILE
    data = path.read_bytes()
    data_start = 8 + header_size(path)
    path.write_bytes(data[: data_start + (len(data) - data_start) // 2])
    return d


def header_too_long(d: Path, fx: BaseFixture) -> Path:
    plain(d, fx)
    path = d / WEIGHTS_FILE
    data = path.read_bytes()
    path.write_bytes(struct.pack("<Q", len(data) + 4096) + data[8:])
    return d


def invalid_json(d: Path, fx: BaseFixture) -> Path:
    plain(d, fx)
    path = d / CONFIG_FILE
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    return d


def empty_folder(d: Path, fx: BaseFixture) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return d


def garbage(d: Path, fx: BaseFixture) -> Path:
    plain(d, fx)
    path = d / WEIGHTS_FILE
    path.write_bytes(random.Random(7).randbytes(path.stat().st_size))
    return d


# --- catalog-sized (config-only bases) ----------------------------------------------------------


def _scaled(geometry: Geometry, claim: str, folder: str | None = None) -> Callable[[Path, BaseFixture], Path]:
    def build(d: Path, fx: BaseFixture) -> Path:
        return write_qv_adapter(d / folder if folder else d, geometry, claim=claim)

    return build


instruct_on_base = _scaled(QWEN25_05B_GEOMETRY, "Qwen/Qwen2.5-0.5B-Instruct")
newer_on_older = _scaled(QWEN25_05B_GEOMETRY, "Qwen/Qwen2.5-0.5B")
quantized_claim = _scaled(QWEN25_05B_GEOMETRY, "Qwen/Qwen2.5-0.5B-Instruct-GPTQ-Int4")
name_hint = _scaled(QWEN25_05B_GEOMETRY, "Qwen/Qwen2.5-0.5B-Instruct", folder="reddit-4b-think")
case_study_scaled = _scaled(QWEN3_4B_GEOMETRY, "Qwen/Qwen2.5-1.5B-Instruct", folder="reddit-4b-think")
