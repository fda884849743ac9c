"""`score_rows`: probabilities for Jigsaw rows from an already loaded model and tokenizer."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from loraguard.errors import InputError
from loraguard.scoring.answers import AnswerTokens, answer_tokens
from loraguard.scoring.data import RowSet, rows_from_records
from loraguard.scoring.progress import ProgressSink
from loraguard.scoring.prompts import PromptTemplate, get_template

__all__ = ["METHODS", "EncodedPrompts", "ScoreResult", "Timing", "encode_prompts", "score_rows"]

Method = Literal["logits", "generate"]
METHODS: tuple[str, ...] = ("logits", "generate")


@dataclass(frozen=True)
class EncodedPrompts:
    """The prompt text of each row and the exact, unpadded token ids the model is given."""

    row_ids: tuple[str, ...]
    prompts: tuple[str, ...]
    input_ids: tuple[tuple[int, ...], ...]
    template: str
    add_special_tokens: bool


@dataclass(frozen=True)
class Timing:
    """Where the time went, and how much work the prefix cache saved."""

    seconds: float
    prompt_seconds: float
    """Rendering and tokenizing prompts."""
    model_seconds: float
    rows: int
    prompt_tokens: int
    computed_tokens: int
    """Tokens run through the model (shared prefixes once; generated tokens not included)."""
    prefix_tokens_skipped: int

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")

    @property
    def tokens_per_second(self) -> float:
        return self.prompt_tokens / self.seconds if self.seconds > 0 else float("inf")

    @property
    def skipped_share(self) -> float:
        return self.prefix_tokens_skipped / self.prompt_tokens if self.prompt_tokens else 0.0

    def to_dict(self) -> dict[str, float | int]:
        return {
            "seconds": self.seconds,
            "prompt_seconds": self.prompt_seconds,
            "model_seconds": self.model_seconds,
            "rows": self.rows,
            "prompt_tokens": self.prompt_tokens,
            "computed_tokens": self.computed_tokens,
            "prefix_tokens_skipped": self.prefix_tokens_skipped,
            "rows_per_second": self.rows_per_second,
            "tokens_per_second": self.tokens_per_second,
            "skipped_share": self.skipped_share,
        }


@dataclass(frozen=True)
class ScoreResult:
    """Probabilities for each row, with how they were obtained. Arrays are read-only."""

    row_ids: tuple[str, ...]
    probabilities: npt.NDArray[np.float64]
    parsed: npt.NDArray[np.bool_]
    """False where no probability could be read (generate: the parser fell back to its default)."""
    stage_counts: Mapping[str, int]
    """Rows decided by each stage: `{"logits": n}`, or the parser's `number/regex/keyword/default`."""
    timing: Timing
    method: str
    prompts: EncodedPrompts
    answers: AnswerTokens | None
    """The answer token ids read (logits method)."""
    answer_mass: npt.NDArray[np.float64] | None
    """Logits method: softmax mass on all answer variants (small = the model is not answering Yes/No)."""
    texts: tuple[str, ...] | None
    """Generate method: the generated texts."""
    notes: tuple[str, ...] = ()
    """Warnings about how the scores were computed (e.g. the prefix cache was turned off)."""
    dtype: str = ""
    """The model's weight dtype (`bfloat16`, `float32`...), empty where unknown."""

    @property
    def parse_failure_share(self) -> float:
        return float(1.0 - self.parsed.mean()) if self.parsed.size else 0.0


def encode_prompts(
    tokenizer: Any, rows: Sequence[Mapping[str, str]], template: str | Path | PromptTemplate = "chat"
) -> EncodedPrompts:
    """Render each row's prompt and tokenize it (unpadded, no truncation)."""
    tpl = get_template(template)
    prompts = [tpl.render(row, tokenizer) for row in rows]
    encoded = tokenizer(prompts, add_special_tokens=tpl.add_special_tokens)["input_ids"]
    for row, ids in zip(rows, encoded, strict=True):
        if not ids:
            raise InputError(f"row_id {row['row_id']!r}: the prompt is empty after tokenization")
    return EncodedPrompts(
        row_ids=tuple(r["row_id"] for r in rows),
        prompts=tuple(prompts),
        input_ids=tuple(tuple(int(t) for t in ids) for ids in encoded),
        template=tpl.name,
        add_special_tokens=tpl.add_special_tokens,
    )


def _as_rows(rows: RowSet | Iterable[Mapping[str, Any]]) -> tuple[Mapping[str, str], ...]:
    if isinstance(rows, RowSet):
        return rows.rows
    return rows_from_records(rows).rows


def score_rows(
    model: Any,
    tokenizer: Any,
    rows: RowSet | Iterable[Mapping[str, Any]],
    *,
    template: str | Path | PromptTemplate = "chat",
    method: Method | str = "logits",
    batch_size: int = 8,
    prefix_cache: bool = True,
    answers: str | Sequence[str] = ("Yes", "No"),
    max_new_tokens: int = 10,
    progress: ProgressSink | None = None,
) -> ScoreResult:
    """Score Jigsaw rows with `model` (a transformers causal LM or a `PeftModel` with its active adapter).

    `method="logits"` reads P(Yes) from one forward pass (batched, with a shared-prefix KV cache when
    `prefix_cache`); `method="generate"` writes up to `max_new_tokens` greedily and parses them.
    Rows are validated like a CSV (`rows_from_records`) unless they already are a `RowSet`.
    """
    if method not in METHODS:
        raise InputError(f"method {method!r}: expected one of {', '.join(METHODS)}")
    if batch_size < 1:
        raise InputError(f"batch size {batch_size}: must be at least 1")
    from loraguard.scoring.logits import pad_token_id

    data = _as_rows(rows)
    t0 = time.perf_counter()
    answer_ids = answer_tokens(tokenizer, answers) if method == "logits" else None
    encoded = encode_prompts(tokenizer, data, template)
    _check_context(model, encoded, max_new_tokens if method == "generate" else 0)
    t1 = time.perf_counter()
    pad = pad_token_id(tokenizer)
    n = len(data)
    prompt_tokens = sum(len(i) for i in encoded.input_ids)
    mass = None
    texts = None
    notes: tuple[str, ...] = ()
    if answer_ids is not None:
        from loraguard.scoring.logits import score_logits

        out = score_logits(
            model,
            encoded.input_ids,
            [r["rule"] for r in data],
            answer_ids,
            batch_size=batch_size,
            prefix_cache=prefix_cache,
            pad_id=pad,
            progress=progress,
        )
        probs, mass = out.probabilities, out.answer_mass
        parsed = np.isfinite(probs)
        counts: dict[str, int] = {"logits": int(parsed.sum()), "nonfinite": int((~parsed).sum())}
        computed, skipped, notes = out.computed_tokens, out.prefix_tokens_skipped, out.notes
    else:
        from loraguard.scoring.generate import generate_texts
        from loraguard.scoring.parse import parse_answers

        generated = generate_texts(
            model,
            tokenizer,
            encoded.input_ids,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            pad_id=pad,
            progress=progress,
        )
        summary = parse_answers(generated)
        probs, parsed, counts = summary.values, summary.parsed, dict(summary.stage_counts)
        texts = tuple(generated)
        computed, skipped = prompt_tokens, 0
    t2 = time.perf_counter()
    parsed = np.asarray(parsed, dtype=bool)
    parsed.setflags(write=False)
    timing = Timing(
        seconds=t2 - t0,
        prompt_seconds=t1 - t0,
        model_seconds=t2 - t1,
        rows=n,
        prompt_tokens=prompt_tokens,
        computed_tokens=computed,
        prefix_tokens_skipped=skipped,
    )
    return ScoreResult(
        row_ids=encoded.row_ids,
        probabilities=probs,
        parsed=parsed,
        stage_counts=MappingProxyType(counts),
        timing=timing,
        method=method,
        prompts=encoded,
        answers=answer_ids,
        answer_mass=mass,
        texts=texts,
        notes=notes,
        dtype=str(next(iter(model.parameters())).dtype).removeprefix("torch."),
    )


def _check_context(model: Any, encoded: EncodedPrompts, extra: int) -> None:
    """Refuse prompts longer than the model's context window (the scores would be meaningless)."""
    from loraguard.scoring.logits import causal_lm_of

    limit = getattr(getattr(causal_lm_of(model), "config", None), "max_position_embeddings", None)
    if not isinstance(limit, int):
        return
    for rid, ids in zip(encoded.row_ids, encoded.input_ids, strict=True):
        if len(ids) + extra > limit:
            raise InputError(
                f"row_id {rid!r}: the prompt has {len(ids)} tokens{f' + {extra} to generate' if extra else ''}, "
                f"more than the model's context window of {limit}; shorten that row or use a shorter template"
            )
