"""Run the samples through a loaded model with and without the adapter (torch, imported lazily).

- *one row at a time* (no padding, no cache), adapter on and off for each row in turn: the
  next-token logits at the answer position give P(Yes) (as `loraguard score` computes it), the
  effect (KL, logit difference) and the non-finite check. Only one row's logits are held at a time.
- *batched*, adapter on, through `score_rows`: the first `batch_size - 1` rows in one batch with one
  row about 1.5x as long as the longest prompt (its comment repeated), so every row carries a lot of
  padding; once left-padded, once with the shared-prefix KV cache; compared with the one-row
  reference. One batch per path: a padding or cache bug shows on every row of a batch, and the cost
  stays two batches whatever `samples` is (on a real model these batches cost more than the rows'
  one-row passes).

Progress (a `ProgressSink`, e.g. the CLI's rich bar) counts forward passes: two per row, then one per
batched path.
- with `method="generate"`: `score_rows(method="generate", batch_size=1)` on each side (the case
  study's one-row loop) gives the predictions; otherwise the one-row P(Yes) are the predictions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from loraguard.probe.context import BatchCheck, Effect, ProbeContext, ProbeThresholds, Side
from loraguard.scoring.answers import AnswerTokens, answer_tokens
from loraguard.scoring.api import encode_prompts, score_rows
from loraguard.scoring.data import RowSet, rows_from_records
from loraguard.scoring.host import AdapterHost
from loraguard.scoring.logits import causal_lm_of
from loraguard.scoring.progress import ProgressSink
from loraguard.scoring.prompts import PromptTemplate

__all__ = ["measure"]

BATCH_PATHS = (("left-padded", False), ("prefix-cache", True))
STRESS_ROW_ID = "__loraguard_probe_long_row__"


@dataclass(frozen=True)
class _OneRow:
    p_adapted: np.ndarray
    p_base: np.ndarray
    finite_adapted: np.ndarray
    finite_base: np.ndarray
    mass_adapted: np.ndarray
    mass_base: np.ndarray
    effect: Effect


def measure(
    host: AdapterHost,
    adapter: str,
    rows: RowSet,
    *,
    method: str = "logits",
    template: str | Path | PromptTemplate = "chat",
    batch_size: int = 8,
    thresholds: ProbeThresholds | None = None,
    progress: ProgressSink | None = None,
) -> ProbeContext:
    """Measure `adapter` (a name attached to `host`) on `rows`; see the module docstring."""
    tok = host.tokenizer
    answers = answer_tokens(tok)
    encoded = encode_prompts(tok, rows.rows, template)
    t = thresholds if thresholds is not None else ProbeThresholds()
    tokens = sum(len(i) for i in encoded.input_ids)
    batched = len(BATCH_PATHS) if batch_size >= 2 else 0
    if progress is not None:
        progress.start(2 * len(rows) + batched, 2 * tokens)
    one = _one_row_pass(host, adapter, encoded.input_ids, answers, progress)
    longest = max(len(p) for p in encoded.prompts)
    batch = _batch_check(host, adapter, rows, one.p_adapted, longest, template, batch_size, t.batch_tolerance, progress)
    if method == "generate":
        adapted = _generated(host, adapter, rows, template, one.finite_adapted, one.mass_adapted)
        base = _generated(host, None, rows, template, one.finite_base, one.mass_base)
    else:
        adapted = _logit_side(one.p_adapted, one.finite_adapted, one.mass_adapted)
        base = _logit_side(one.p_base, one.finite_base, one.mass_base)
    return ProbeContext(
        row_ids=rows.row_ids, method=method, adapted=adapted, base=base, effect=one.effect, batch=batch, thresholds=t
    )


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _logit_side(p: np.ndarray, finite: np.ndarray, mass: np.ndarray) -> Side:
    parsed = _readonly(np.isfinite(p) & finite)
    counts = {"logits": int(parsed.sum()), "nonfinite": int((~parsed).sum())}
    return Side(
        probabilities=p,
        parsed=parsed,
        logits_finite=finite,
        stage_counts=MappingProxyType(counts),
        answer_mass=mass,
    )


def _one_row_pass(
    host: AdapterHost,
    adapter: str,
    ids: Sequence[Sequence[int]],
    answers: AnswerTokens,
    progress: ProgressSink | None = None,
) -> _OneRow:
    import torch

    n = len(ids)
    p = {True: np.full(n, np.nan), False: np.full(n, np.nan)}
    mass = {True: np.full(n, np.nan), False: np.full(n, np.nan)}
    finite = {True: np.zeros(n, dtype=bool), False: np.zeros(n, dtype=bool)}
    kls: list[float] = []
    logit_diffs: list[float] = []
    prob_diffs: list[float] = []
    lm = causal_lm_of(host.model)
    device = next(lm.parameters()).device
    pos = torch.tensor(answers.positive_ids, device=device)
    neg = torch.tensor(answers.negative_ids, device=device)
    with torch.inference_mode():
        for i, row_ids in enumerate(ids):
            x = torch.tensor([list(row_ids)], dtype=torch.long, device=device)
            logits = {}
            for on in (True, False):
                with host.activate(adapter if on else None):
                    out = lm(input_ids=x, use_cache=False, logits_to_keep=1).logits[0, -1].float()
                logits[on] = out
                finite[on][i] = bool(torch.isfinite(out).all())
                lse_pos = torch.logsumexp(out.index_select(-1, pos), dim=-1)
                both = torch.logaddexp(lse_pos, torch.logsumexp(out.index_select(-1, neg), dim=-1))
                p[on][i] = float(torch.exp(lse_pos - both))
                mass[on][i] = float(torch.exp(both - torch.logsumexp(out, dim=-1)))
                if progress is not None:
                    progress.advance(1, len(row_ids))
            if finite[True][i] and finite[False][i]:
                la, lb = logits[True].double(), logits[False].double()
                log_a, log_b = torch.log_softmax(la, -1), torch.log_softmax(lb, -1)
                kls.append(max(float((log_a.exp() * (log_a - log_b)).sum()), 0.0))
                logit_diffs.append(float((la - lb).abs().max()))
                prob_diffs.append(abs(p[True][i] - p[False][i]))
    effect = Effect(
        mean_kl=float(np.mean(kls)) if kls else None,
        max_logit_diff=max(logit_diffs) if logit_diffs else None,
        max_prob_diff=max(prob_diffs) if prob_diffs else None,
        mean_prob_diff=float(np.mean(prob_diffs)) if prob_diffs else None,
        rows=len(kls),
    )
    return _OneRow(
        _readonly(p[True]),
        _readonly(p[False]),
        _readonly(finite[True]),
        _readonly(finite[False]),
        _readonly(mass[True]),
        _readonly(mass[False]),
        effect,
    )


def _stress_row(row: Mapping[str, str], prompt_chars: int) -> dict[str, str]:
    """A copy of `row` whose comment is repeated until its prompt is about 1.5x the longest prompt."""
    body = row["body"].strip() or "padding"
    times = max(2, -(-prompt_chars // (2 * len(body))) + 1)
    return {**row, "row_id": STRESS_ROW_ID, "body": " ".join([body] * times)}


def _batch_check(
    host: AdapterHost,
    adapter: str,
    rows: RowSet,
    reference: np.ndarray,
    prompt_chars: int,
    template: str | Path | PromptTemplate,
    batch_size: int,
    tolerance: float,
    progress: ProgressSink | None = None,
) -> BatchCheck | None:
    """Score the first `batch_size - 1` rows in one batch with one much longer row (so each row carries
    a lot of padding), once per batched path, and compare them with the one-row reference."""
    n = len(rows)
    size = min(batch_size, n + 1)
    if batch_size < 2:
        return None
    max_diff: dict[str, float | None] = {}
    bad: set[int] = set()
    chunk = list(range(size - 1))
    reference = reference[chunk]
    for name, prefix_cache in BATCH_PATHS:
        batch = [dict(rows.rows[i]) for i in chunk]
        batch.append(_stress_row(batch[0], prompt_chars))
        with host.activate(adapter) as model:
            out = score_rows(
                model,
                host.tokenizer,
                rows_from_records(batch, source="probe-batch"),
                template=template,
                method="logits",
                batch_size=size,
                prefix_cache=prefix_cache,
            )
        if progress is not None:
            progress.advance(1, 0)
        got = np.asarray(out.probabilities[:-1], dtype=float)
        fin_ref, fin_got = np.isfinite(reference), np.isfinite(got)
        both = fin_ref & fin_got
        diff = np.abs(got[both] - reference[both])
        max_diff[name] = float(diff.max()) if diff.size else None
        bad.update(int(i) for i in np.flatnonzero(fin_ref != fin_got))
        bad.update(int(i) for i in np.flatnonzero(both)[diff > tolerance])
    return BatchCheck(
        batch_size=size,
        max_diff=MappingProxyType(max_diff),
        rows=tuple(rows.row_ids[chunk[i]] for i in sorted(bad)),
        checked=len(chunk),
    )


def _generated(
    host: AdapterHost,
    adapter: str | None,
    rows: RowSet,
    template: str | Path | PromptTemplate,
    finite: np.ndarray,
    mass: np.ndarray,
) -> Side:
    with host.activate(adapter) as model:
        result: Any = score_rows(model, host.tokenizer, rows, template=template, method="generate", batch_size=1)
    return Side(
        probabilities=result.probabilities,
        parsed=result.parsed,
        logits_finite=finite,
        stage_counts=result.stage_counts,
        texts=result.texts,
        answer_mass=mass,
    )
