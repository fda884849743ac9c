"""Weights don't lie: which catalog bases an adapter's tensor shapes fit.

An adapter's LoRA tensors give each targeted module's `(in_features, out_features)`; together
with the highest layer index they pin down the architecture, whatever the adapter's config claims.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from loraguard.basemodel.catalog import catalog_spec, load_catalog
from loraguard.basemodel.spec import InferredBase

__all__ = ["describe_dims", "infer_bases"]

_HEADS = frozenset({"score", "classifier"})
"""Classification heads: their width is the label count, a training choice, not the base's."""


@dataclass(frozen=True)
class _Candidate:
    name: str
    model_type: str
    param_count: int
    num_layers: int
    vocab_size: int
    shapes: Mapping[str, tuple[int, int]]


@lru_cache(maxsize=16)
def _candidates(task: str) -> tuple[_Candidate, ...]:
    """Each derivable catalog entry's layer signature for `task`, computed once.

    Entries built from a transformers skeleton (BERT, T5, Whisper...) are left out: inferring must
    stay on the static path, which never imports torch.
    """
    out = []
    for entry in load_catalog():
        if not entry.derivable:
            continue
        spec = catalog_spec(entry, task)
        shapes = {name: (s.in_features, s.out_features) for name, s in spec.layer_signature().items()}
        out.append(_Candidate(entry.name, spec.model_type, entry.params, spec.num_layers, spec.vocab_size, shapes))
    return tuple(out)


def _fits(observed: tuple[int, int], expected: tuple[int, int] | None, module: str) -> bool:
    if expected is None:
        return False
    if module.rsplit(".", 1)[-1] in _HEADS:
        return observed[0] == expected[0]
    return observed == expected


def infer_bases(
    signature: Mapping[str, tuple[int, int]],
    *,
    max_layer_index: int | None,
    vocab_size: int | None = None,
    task: str = "CAUSAL_LM",
) -> list[InferredBase]:
    """Every derivable catalog model all of whose observed modules exist with exactly the observed shapes.

    `signature` maps layer-relative module names (`self_attn.q_proj`, `mlp.down_proj`, `lm_head`,
    `model.embed_tokens`) to `(in_features, out_features)`. A base must also have more than
    `max_layer_index` layers and, when given, `vocab_size` tokens. A classification head (`score`,
    `classifier`) is matched on its input width only. Best first: the adapter's last layer is the
    base's last layer, then more matched modules, then by name. An empty signature infers nothing.
    """
    if not signature:
        return []
    observed = [(module, (int(shape[0]), int(shape[1]))) for module, shape in signature.items()]
    results: list[InferredBase] = []
    for cand in _candidates(task):
        if max_layer_index is not None and cand.num_layers <= max_layer_index:
            continue
        if vocab_size is not None and cand.vocab_size != vocab_size:
            continue
        if all(_fits(shape, cand.shapes.get(module), module) for module, shape in observed):
            results.append(
                InferredBase(
                    name=cand.name,
                    model_type=cand.model_type,
                    param_count=cand.param_count,
                    matched_modules=len(observed),
                    num_layers=cand.num_layers,
                    exact_layers=max_layer_index is not None and cand.num_layers == max_layer_index + 1,
                )
            )
    results.sort(key=lambda r: (not r.exact_layers, -r.matched_modules, r.name.lower()))
    return results


# Leaf names by role, across the families loraguard knows (Llama, Phi, GPT-2, BERT, T5...).
_ROLES: dict[str, str] = {
    **dict.fromkeys(("q_proj", "query", "q", "q_lin", "wq"), "q"),
    **dict.fromkeys(("k_proj", "v_proj", "key", "value", "k", "v", "k_lin", "v_lin", "wk", "wv"), "kv"),
    **dict.fromkeys(("o_proj", "out_proj", "o", "out_lin"), "o"),
    **dict.fromkeys(("qkv_proj", "c_attn", "query_key_value", "Wqkv", "W_pack"), "qkv"),
    **dict.fromkeys(("gate_proj", "up_proj", "fc1", "c_fc", "wi", "wi_0", "wi_1", "lin1", "dense_h_to_4h"), "up"),
    **dict.fromkeys(("down_proj", "fc2", "wo", "lin2", "dense_4h_to_h"), "down"),
    "gate_up_proj": "gate_up",
    **dict.fromkeys(("embed_tokens", "wte", "word_embeddings", "shared", "tok_embeddings"), "embed"),
    "lm_head": "lm_head",
}


def _role(module: str) -> str | None:
    parts = module.replace("/", ".").split(".")
    leaf = parts[-1]
    if leaf == "dense":  # Phi's attention output; BERT's attention.output / intermediate / output
        parent = parts[-2] if len(parts) > 1 else ""
        if parent == "intermediate":
            return "up"
        if parent == "output" and (len(parts) < 3 or parts[-3] != "attention"):
            return "down"
        return "o"
    return _ROLES.get(leaf)


def describe_dims(signature: Mapping[str, tuple[int, int]]) -> dict[str, Any]:
    """What the observed shapes say about the base, for messages.

    Keys, each present only when seen: `hidden_size` (the width most modules read from or write
    to the residual stream), `q_width`, `kv_width`, `fused_qkv_width`, `mlp_width` (the
    intermediate size; a fused gate_up counts half), `vocab_size` (embedding or lm_head). A key
    seen with several values holds the sorted list.
    """
    hidden_votes: dict[int, int] = {}
    found: dict[str, set[int]] = {}

    def vote(width: int) -> None:
        hidden_votes[width] = hidden_votes.get(width, 0) + 1

    for module, (fan_in, fan_out) in signature.items():
        role = _role(module)
        if role == "embed":
            found.setdefault("vocab_size", set()).add(fan_in)
            vote(fan_out)
        elif role == "lm_head":
            found.setdefault("vocab_size", set()).add(fan_out)
            vote(fan_in)
        elif role in {"o", "down"}:
            vote(fan_out)
            if role == "down":
                found.setdefault("mlp_width", set()).add(fan_in)
        elif role is not None:
            vote(fan_in)
            key, width = {
                "q": ("q_width", fan_out),
                "kv": ("kv_width", fan_out),
                "qkv": ("fused_qkv_width", fan_out),
                "up": ("mlp_width", fan_out),
                "gate_up": ("mlp_width", fan_out // 2),
            }[role]
            found.setdefault(key, set()).add(width)
    out: dict[str, Any] = {}
    if hidden_votes:
        out["hidden_size"] = max(hidden_votes, key=lambda width: (hidden_votes[width], width))
    for key in ("q_width", "kv_width", "fused_qkv_width", "mlp_width", "vocab_size"):
        if key in found:
            values = sorted(found[key])
            out[key] = values[0] if len(values) == 1 else values
    return out
