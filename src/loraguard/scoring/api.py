"""`score_rows`: probabilities for Jigsaw rows from an already loaded model and tokenizer.

`score_chunks` scores rows that arrive a chunk at a time (`loraguard score` reads a file this way, so
its memory does not grow with the file): each chunk is rendered, tokenized and scored, only its
probabilities are kept, and its prompts go to an optional sink (`--dump-prompts`). `score_rows` is one
chunk, its prompts kept in the result."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from loraguard.errors import InputError
from loraguard.scoring.answers import AnswerTokens, answer_tokens
from loraguard.scoring.data import RowSet, rows_from_records
from loraguard.scoring.progress import ChunkedProgress, ProgressSink
from loraguard.scoring.prompts import PromptTemplate, get_template

__all__ = [
    "METHODS",
    "EncodedPrompts",
    "PromptSink",
    "ScoreResult",
    "Timing",
    "check_context_fits",
    "encode_prompts",
    "score_chunks",
    "score_rows",
]

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
    prompts: EncodedPrompts | None
    """The prompts and token ids scored (`score_rows`); None when they were not kept (`score_chunks`:
    they went to its `prompts_to` sink, if any)."""
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
    template: str = ""
    """The prompt template's name."""

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


PromptSink = Callable[[EncodedPrompts, AnswerTokens | None], None]
"""Receives each chunk's prompts and the answer tokens read (`score_chunks`' `prompts_to`)."""


def _as_rows(rows: RowSet | Iterable[Mapping[str, Any]]) -> RowSet:
    return rows if isinstance(rows, RowSet) else rows_from_records(rows)


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
    Rows are validated like a CSV (`rows_from_records`) unless they already are a `RowSet`. Every
    prompt is checked against the model's context window before any row is scored; the result keeps
    the prompts (`ScoreResult.prompts`).
    """
    data = _as_rows(rows)
    return score_chunks(
        model,
        tokenizer,
        [data],
        total_rows=len(data),
        template=template,
        method=method,
        batch_size=batch_size,
        prefix_cache=prefix_cache,
        answers=answers,
        max_new_tokens=max_new_tokens,
        progress=progress,
        keep_prompts=True,
    )


def score_chunks(
    model: Any,
    tokenizer: Any,
    chunks: Iterable[RowSet],
    *,
    total_rows: int,
    template: str | Path | PromptTemplate = "chat",
    method: Method | str = "logits",
    batch_size: int = 8,
    prefix_cache: bool = True,
    answers: str | Sequence[str] = ("Yes", "No"),
    max_new_tokens: int = 10,
    progress: ProgressSink | None = None,
    prompts_to: PromptSink | None = None,
    keep_prompts: bool = False,
) -> ScoreResult:
    """`score_rows` over rows that arrive in chunks (`RowSet`s, e.g. `RowSet.chunks` or
    `data.iter_row_chunks`), holding one chunk's prompts at a time.

    `total_rows`: how many rows the chunks hold together (only progress and the time budget use it,
    to project). Each chunk's prompts are checked against the context window before it is scored (check the
    whole input first with `check_context_fits`), then handed to `prompts_to`; `keep_prompts` keeps
    them in the result too (memory proportional to the input, as `score_rows` does).
    """
    if method not in METHODS:
        raise InputError(f"method {method!r}: expected one of {', '.join(METHODS)}")
    if batch_size < 1:
        raise InputError(f"batch size {batch_size}: must be at least 1")
    from loraguard.scoring.generate import generate_texts
    from loraguard.scoring.logits import pad_token_id, score_logits
    from loraguard.scoring.parse import parse_answers

    tpl = get_template(template)
    t0 = time.perf_counter()
    answer_ids = answer_tokens(tokenizer, answers) if method == "logits" else None
    pad = pad_token_id(tokenizer)
    extra = max_new_tokens if method == "generate" else 0
    tracker = ChunkedProgress(progress, total_rows) if progress is not None else None
    row_ids: list[str] = []
    probs: list[npt.NDArray[np.float64]] = []
    parsed: list[npt.NDArray[np.bool_]] = []
    masses: list[npt.NDArray[np.float64]] = []
    texts: list[str] = []
    counts: dict[str, int] = {}
    notes: list[str] = []
    kept: list[EncodedPrompts] = []
    prompt_s = model_s = 0.0
    prompt_tokens = computed = skipped = 0
    for chunk in chunks:
        c0 = time.perf_counter()
        encoded = encode_prompts(tokenizer, chunk.rows, tpl)
        _check_context(model, encoded, extra)
        c1 = time.perf_counter()
        prompt_s += c1 - c0
        if prompts_to is not None:
            prompts_to(encoded, answer_ids)
        if keep_prompts:
            kept.append(encoded)
        tokens = sum(len(i) for i in encoded.input_ids)
        prompt_tokens += tokens
        if answer_ids is not None:
            out = score_logits(
                model,
                encoded.input_ids,
                [r["rule"] for r in chunk.rows],
                answer_ids,
                batch_size=batch_size,
                prefix_cache=prefix_cache,
                pad_id=pad,
                progress=tracker,
            )
            ok = np.isfinite(out.probabilities)
            probs.append(out.probabilities)
            masses.append(out.answer_mass)
            parsed.append(ok)
            _add(counts, {"logits": int(ok.sum()), "nonfinite": int((~ok).sum())})
            computed, skipped = computed + out.computed_tokens, skipped + out.prefix_tokens_skipped
            notes.extend(n for n in out.notes if n not in notes)
        else:
            generated = generate_texts(
                model,
                tokenizer,
                encoded.input_ids,
                batch_size=batch_size,
                max_new_tokens=max_new_tokens,
                pad_id=pad,
                progress=tracker,
            )
            summary = parse_answers(generated)
            probs.append(np.asarray(summary.values, dtype=np.float64))
            parsed.append(np.asarray(summary.parsed, dtype=bool))
            _add(counts, summary.stage_counts)
            texts.extend(generated)
            computed += tokens
        row_ids.extend(encoded.row_ids)
        model_s += time.perf_counter() - c1
    if not row_ids:
        raise InputError("no rows to score")
    t2 = time.perf_counter()
    values = _readonly(np.concatenate(probs))
    ok_all = _readonly(np.concatenate(parsed))
    timing = Timing(
        seconds=t2 - t0,
        prompt_seconds=prompt_s,
        model_seconds=model_s,
        rows=len(row_ids),
        prompt_tokens=prompt_tokens,
        computed_tokens=computed,
        prefix_tokens_skipped=skipped,
    )
    prompts = None
    if keep_prompts:
        prompts = EncodedPrompts(
            row_ids=tuple(row_ids),
            prompts=tuple(p for e in kept for p in e.prompts),
            input_ids=tuple(i for e in kept for i in e.input_ids),
            template=tpl.name,
            add_special_tokens=tpl.add_special_tokens,
        )
    return ScoreResult(
        row_ids=tuple(row_ids),
        probabilities=values,
        parsed=ok_all,
        stage_counts=MappingProxyType(counts),
        timing=timing,
        method=method,
        prompts=prompts,
        answers=answer_ids,
        answer_mass=_readonly(np.concatenate(masses)) if masses else None,
        texts=tuple(texts) if answer_ids is None else None,
        notes=tuple(notes),
        dtype=str(next(iter(model.parameters())).dtype).removeprefix("torch."),
        template=tpl.name,
    )


def _add(counts: dict[str, int], more: Mapping[str, int]) -> None:
    for key, n in more.items():
        counts[key] = counts.get(key, 0) + n


def _readonly(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    a.setflags(write=False)
    return a


CONTEXT_SLACK = 16
"""Tokens a prompt may have beyond its UTF-8 bytes (BOS/EOS and the like): every tokenizer in use here
gives each token at least one byte of text, so a prompt of `limit - CONTEXT_SLACK` bytes fits."""


def check_context_fits(
    model: Any,
    tokenizer: Any,
    chunks: Iterable[RowSet],
    *,
    template: str | Path | PromptTemplate = "chat",
    method: Method | str = "logits",
    max_new_tokens: int = 10,
) -> None:
    """Refuse, before anything is scored, a row whose prompt is longer than the model's context window
    (`InputError` naming it). Cheap: prompts are rendered, and only those with more UTF-8 bytes than the
    window holds tokens are tokenized."""
    limit = _context_limit(model)
    if limit is None:
        return
    tpl = get_template(template)
    extra = max_new_tokens if method == "generate" else 0
    for chunk in chunks:
        long = [r for r in chunk.rows if len(tpl.render(r, tokenizer).encode()) + CONTEXT_SLACK + extra > limit]
        if long:
            _check_context(model, encode_prompts(tokenizer, long, tpl), extra)


def _context_limit(model: Any) -> int | None:
    """The model's context window (`max_position_embeddings`), None where its config does not say."""
    from loraguard.scoring.logits import causal_lm_of

    limit = getattr(getattr(causal_lm_of(model), "config", None), "max_position_embeddings", None)
    return limit if isinstance(limit, int) else None


def _check_context(model: Any, encoded: EncodedPrompts, extra: int) -> None:
    """Refuse prompts longer than the model's context window (the scores would be meaningless)."""
    limit = _context_limit(model)
    if limit is None:
        return
    for rid, ids in zip(encoded.row_ids, encoded.input_ids, strict=True):
        if len(ids) + extra > limit:
            raise InputError(
                f"row_id {rid!r}: the prompt has {len(ids)} tokens{f' + {extra} to generate' if extra else ''}, "
                f"more than the model's context window of {limit}; shorten that row or use a shorter template"
            )
