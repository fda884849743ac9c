"""The `logits` method: P(Yes) from one forward pass, batched, with a shared-prefix KV cache.

For each row, with p the softmax of the logits at the position after the last prompt token:

    P(yes) = Σ p(positive ids) / (Σ p(positive ids) + Σ p(negative ids))
           = sigmoid(logsumexp(logits[positive]) - logsumexp(logits[negative]))

computed in float32 (the softmax normaliser cancels). `answer_mass` = Σ p(positive ∪ negative)
under the full softmax: a model that does not answer Yes/No at all shows a small mass.

Two paths, both exact up to float rounding (tests check 1e-4 against one row at a time):

- *plain*: length-sorted batches, LEFT padded, `attention_mask` plus explicit `position_ids`
  (0 at each row's first real token), `logits_to_keep=1` so the LM head runs on one position.
- *prefix cache*: rows sharing a token prefix (see `batching.plan_prefix_groups`) run the prefix
  once into a `DynamicCache`; each batch then runs only its suffixes, RIGHT padded, with the cache
  expanded along the batch, `attention_mask = [prefix ones, suffix mask]`, `position_ids = P + i`.
  The decoder returns hidden states; each row's last real position is gathered and only those go
  through the LM head (`logits_to_keep` cannot pick a different position per row).
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from loraguard.scoring.answers import AnswerTokens
from loraguard.scoring.batching import left_pad, plan_batches, plan_prefix_groups, right_pad
from loraguard.scoring.progress import ProgressSink

__all__ = ["LogitsOutput", "causal_lm_of", "pad_token_id", "score_logits"]


@dataclass(frozen=True)
class LogitsOutput:
    probabilities: npt.NDArray[np.float64]
    answer_mass: npt.NDArray[np.float64]
    computed_tokens: int
    """Tokens that went through the model (each shared prefix once)."""
    prefix_tokens_skipped: int
    """Prompt tokens not computed thanks to the prefix cache."""
    prefix_groups: int
    notes: tuple[str, ...] = ()
    """Things the caller should be told (e.g. the prefix cache was turned off, and why)."""


def causal_lm_of(model: Any) -> Any:
    """The transformers causal LM inside a `PeftModel` (LoRA layers are injected in place), or `model`."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) and hasattr(model, "peft_config") else model


def pad_token_id(tokenizer: Any) -> int:
    for name in ("pad_token_id", "eos_token_id", "unk_token_id"):
        value = getattr(tokenizer, name, None)
        if isinstance(value, int):
            return value
    return 0


def _cache_kwarg(decoder: Any) -> str | None:
    params = inspect.signature(decoder.forward).parameters
    for name in ("cache", "past_key_values"):
        if name in params:
            return name
    return None


def _prefix_cache_support(lm: Any) -> tuple[Any, Any, str] | None:
    """(decoder, lm_head, cache kwarg name) when the shared-prefix path can run on this model."""
    get_decoder = getattr(lm, "get_decoder", None)
    head = lm.get_output_embeddings() if hasattr(lm, "get_output_embeddings") else None
    if not callable(get_decoder) or head is None:
        return None
    decoder = get_decoder()
    kwarg = _cache_kwarg(decoder)
    cfg = lm.config.get_text_config(decoder=True) if hasattr(lm.config, "get_text_config") else lm.config
    layer_types = getattr(cfg, "layer_types", None) or ()
    if kwarg is None or any(t != "full_attention" for t in layer_types):
        return None  # sliding-window / linear-attention layers: keep the plain path
    if getattr(cfg, "final_logit_softcapping", None):
        return None  # the head is not a plain projection of the hidden state
    return decoder, head, kwarg


def score_logits(
    model: Any,
    ids: Sequence[Sequence[int]],
    keys: Sequence[Hashable],
    answers: AnswerTokens,
    *,
    batch_size: int = 8,
    prefix_cache: bool = True,
    pad_id: int = 0,
    progress: ProgressSink | None = None,
) -> LogitsOutput:
    """P(positive answer) for each row of token `ids` (see the module docstring)."""
    import torch

    lm = causal_lm_of(model)
    device = next(lm.parameters()).device
    n = len(ids)
    probs = np.full(n, np.nan, dtype=np.float64)
    mass = np.full(n, np.nan, dtype=np.float64)
    support = _prefix_cache_support(lm) if prefix_cache else None
    groups, rest = plan_prefix_groups(ids, keys) if support is not None else ([], list(range(n)))
    lengths = [len(s) for s in ids]
    skipped = sum(len(g.prefix_ids) * (len(g.rows) - 1) for g in groups)
    computed = sum(lengths) - skipped
    pos_idx = torch.tensor(answers.positive_ids, device=device)
    neg_idx = torch.tensor(answers.negative_ids, device=device)

    def finish(rows: Sequence[int], logits: Any) -> None:
        logits = logits.float()
        lse_pos = torch.logsumexp(logits.index_select(-1, pos_idx), dim=-1)
        lse_neg = torch.logsumexp(logits.index_select(-1, neg_idx), dim=-1)
        both = torch.logaddexp(lse_pos, lse_neg)
        p = torch.exp(lse_pos - both)
        m = torch.exp(both - torch.logsumexp(logits, dim=-1))
        probs[list(rows)] = p.cpu().numpy()
        mass[list(rows)] = m.cpu().numpy()

    def tensor(rows: list[list[int]]) -> Any:
        return torch.tensor(rows, dtype=torch.long, device=device)

    params = inspect.signature(lm.forward).parameters
    extra = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
    with_positions = "position_ids" in params
    notes: list[str] = []

    def plain(batch: Sequence[int]) -> Any:
        b_ids, b_mask, b_pos = left_pad([ids[i] for i in batch], pad_id)
        kwargs = {"position_ids": tensor(b_pos)} if with_positions else {}
        out = lm(input_ids=tensor(b_ids), attention_mask=tensor(b_mask), use_cache=False, **kwargs, **extra)
        return out.logits[:, -1, :]

    with torch.inference_mode():
        if groups:
            assert support is not None
            key = _cross_check_key(model, lm)
            known = _CROSS_CHECKED.get(lm, {})
            if key in known:
                reason = known[key]
            else:
                reason = _cross_check(torch, lm, support, groups[0].prefix_ids, groups[0].rows[0], ids, device, plain)
                _CROSS_CHECKED.setdefault(lm, {})[key] = reason
            if reason:
                notes.append(f"prefix cache disabled: {reason}")
                rest, groups, computed, skipped = list(range(n)), [], sum(lengths), 0
        if progress is not None:
            progress.start(n, computed)
        for batch in plan_batches(lengths, rest, batch_size):
            finish(batch, plain(batch))
            if progress is not None:
                progress.advance(len(batch), sum(lengths[i] for i in batch))
        if groups:
            assert support is not None
            decoder, head, cache_kwarg = support
            for group in groups:
                _score_group(
                    torch,
                    lm,
                    decoder,
                    head,
                    cache_kwarg,
                    group.prefix_ids,
                    group.rows,
                    ids,
                    batch_size,
                    pad_id,
                    device,
                    finish,
                    progress,
                )
    for arr in (probs, mass):
        arr.setflags(write=False)
    return LogitsOutput(probs, mass, computed, skipped, len(groups), tuple(notes))


_CROSS_CHECKED: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], str | None]] = weakref.WeakKeyDictionary()
"""The cross-check's verdict per model and active adapter(s): a server scoring micro-batches runs it
once per adapter, not once per batch (two single-row forward passes each time)."""


CROSS_CHECK_HALF_TOLERANCE = 2e-2
"""Largest next-token probability difference between the prefix-cache and plain paths in bf16/fp16."""


def _cross_check_key(model: Any, lm: Any) -> tuple[Any, ...]:
    """What the verdict depends on: the active adapters (each config object, replaced on reload) and the dtype."""
    active = getattr(model, "active_adapters", None)
    names = tuple(active) if isinstance(active, (list, tuple)) else ((active,) if isinstance(active, str) else ())
    configs = getattr(model, "peft_config", {}) or {}
    enabled = not getattr(getattr(model, "base_model", None), "_disable_adapters", False)
    return (names, tuple(id(configs.get(n)) for n in names), enabled, str(next(lm.parameters()).dtype))


def _cross_check(
    torch: Any,
    lm: Any,
    support: tuple[Any, Any, str],
    prefix: Sequence[int],
    row: int,
    ids: Sequence[Sequence[int]],
    device: Any,
    plain: Any,
) -> str | None:
    """Score one row both ways; a mismatch (an architecture that rescales or caps logits inside its
    `forward`, say) turns the prefix path off rather than silently returning different numbers."""
    decoder, head, cache_kwarg = support
    got: list[Any] = []
    _score_group(
        torch,
        lm,
        decoder,
        head,
        cache_kwarg,
        prefix,
        [row],
        ids,
        1,
        0,
        device,
        lambda _rows, logits: got.append(logits.float()),
        None,
    )
    want = plain([row]).float()
    # Compared as next-token probabilities: in half precision the two paths round differently, and
    # log-probabilities of tokens nobody samples magnify that noise (0.1 on a bf16 model whose answer
    # probabilities agree to 1e-3); a forward pass that rescales or caps logits moves the mass itself.
    diff = float((torch.softmax(got[0], -1) - torch.softmax(want, -1)).abs().max())
    tol = 1e-3 if next(lm.parameters()).dtype == torch.float32 else CROSS_CHECK_HALF_TOLERANCE
    if not diff <= tol:  # also catches NaN
        return (
            f"its logits differ from a plain forward pass (next-token probabilities by {diff:.3g}, tolerance {tol:g})"
        )
    return None


def _score_group(
    torch: Any,
    lm: Any,
    decoder: Any,
    head: Any,
    cache_kwarg: str,
    prefix: Sequence[int],
    rows: Sequence[int],
    ids: Sequence[Sequence[int]],
    batch_size: int,
    pad_id: int,
    device: Any,
    finish: Any,
    progress: ProgressSink | None,
) -> None:
    from transformers import DynamicCache

    p = len(prefix)
    cache = DynamicCache(config=lm.config)
    decoder(input_ids=torch.tensor([list(prefix)], device=device), use_cache=True, **{cache_kwarg: cache})
    layers: list[tuple[Any, Any]] = [(layer.keys, layer.values) for layer in cache.layers]  # type: ignore[union-attr]
    if progress is not None:
        progress.advance(0, p)
    suffix_len = {i: len(ids[i]) - p for i in rows}
    for batch in plan_batches(suffix_len, rows, batch_size):
        b = len(batch)
        s_ids, s_mask = right_pad([ids[i][p:] for i in batch], pad_id)
        width = len(s_ids[0])
        batch_cache = _expanded_cache(DynamicCache, lm.config, layers, b)
        mask = torch.cat(
            [torch.ones(b, p, dtype=torch.long, device=device), torch.tensor(s_mask, dtype=torch.long, device=device)],
            dim=1,
        )
        positions = torch.arange(p, p + width, device=device).unsqueeze(0).expand(b, -1)
        out = decoder(
            input_ids=torch.tensor(s_ids, device=device),
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **{cache_kwarg: batch_cache},
        )
        last = torch.tensor([suffix_len[i] - 1 for i in batch], device=device)
        hidden = out.last_hidden_state[torch.arange(b, device=device), last]
        finish(batch, head(hidden))
        if progress is not None:
            progress.advance(b, sum(suffix_len[i] for i in batch))


def _expanded_cache(cache_cls: Any, config: Any, layers: Sequence[tuple[Any, Any]], batch: int) -> Any:
    """A cache holding the prefix keys/values broadcast to `batch` rows.

    The layers hold *views* (`expand`, no copy), so the only copy is the one the attention layer's
    `update` makes when it appends the suffix. Falls back to the public constructor (which copies
    once more) for cache layer types other than the plain `DynamicLayer`.
    """
    from transformers.cache_utils import DynamicLayer

    views = [(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in layers]
    cache = cache_cls(config=config)
    if len(cache.layers) != len(views) or any(type(layer) is not DynamicLayer for layer in cache.layers):
        return cache_cls(views, config=config)
    for layer, (k, v) in zip(cache.layers, views, strict=True):
        layer.lazy_initialization(k, v)
        layer.keys, layer.values = k, v
    return cache
