"""Answer tokens: which token ids stand for "Yes" and for "No" in a tokenizer.

For each answer word the candidates are its case variants (as given, lower, upper, capitalised),
each with and without a leading space ("Yes", " Yes", "yes", " yes", "YES"...). Only candidates
that encode to exactly one token (no special tokens added, not the unknown token) are kept: a
multi-token variant's first token ("Y" of "Y|es") would also stand for other words. Ids are
de-duplicated; an id claimed by both answers is an error, and so is an answer with no single-token
variant at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from loraguard.errors import InputError

__all__ = ["LOW_ANSWER_MASS", "AnswerTokens", "answer_tokens", "low_answer_mass", "parse_answers_option"]

LOW_ANSWER_MASS = 0.01
"""A mean softmax mass on the answer tokens below this (1%) means the model is not answering with these
words: the answer words or the prompt template do not fit it (`score` alerts, `probe` reports LG608)."""


@dataclass(frozen=True)
class AnswerTokens:
    """Token ids of the positive ("Yes") and negative ("No") answer, with the variants they encode."""

    positive: str
    negative: str
    positive_ids: tuple[int, ...]
    negative_ids: tuple[int, ...]
    positive_variants: tuple[str, ...]
    negative_variants: tuple[str, ...]

    def describe(self) -> str:
        pos = ", ".join(repr(v) for v in self.positive_variants)
        neg = ", ".join(repr(v) for v in self.negative_variants)
        return f"positive {pos} -> {list(self.positive_ids)}; negative {neg} -> {list(self.negative_ids)}"


def parse_answers_option(spec: str | Sequence[str]) -> tuple[str, str]:
    """`"Yes,No"` (or a 2-sequence) to `("Yes", "No")`."""
    parts = [p.strip() for p in spec.split(",")] if isinstance(spec, str) else [str(p).strip() for p in spec]
    if len(parts) != 2 or not all(parts):
        raise InputError(f"answers {spec!r}: expected two comma-separated words, positive first, like 'Yes,No'")
    if parts[0] == parts[1]:
        raise InputError(f"answers {spec!r}: the positive and negative answer are the same word")
    return parts[0], parts[1]


def _candidates(word: str) -> list[str]:
    forms: list[str] = []
    for form in (word, word.lower(), word.upper(), word.capitalize()):
        for variant in (form, " " + form):
            if variant not in forms:
                forms.append(variant)
    return forms


def _single_token_variants(tokenizer: Any, word: str) -> tuple[list[int], list[str]]:
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    unk = getattr(tokenizer, "unk_token_id", None)
    ids: list[int] = []
    variants: list[str] = []
    for variant in _candidates(word):
        encoded = tokenizer.encode(variant, add_special_tokens=False)
        if len(encoded) != 1:
            continue
        token_id = int(encoded[0])
        if token_id == unk or token_id in special:
            continue
        if token_id not in ids:
            ids.append(token_id)
            variants.append(variant)
    return ids, variants


def answer_tokens(tokenizer: Any, answers: str | Sequence[str] = ("Yes", "No")) -> AnswerTokens:
    """The single-token ids of both answers' variants; `InputError` if an answer has none."""
    positive, negative = parse_answers_option(answers)
    pos_ids, pos_var = _single_token_variants(tokenizer, positive)
    neg_ids, neg_var = _single_token_variants(tokenizer, negative)
    for word, ids in ((positive, pos_ids), (negative, neg_ids)):
        if not ids:
            shown = ", ".join(repr(c) for c in _candidates(word))
            raise InputError(
                f"answer {word!r}: none of its variants ({shown}) is a single token for this tokenizer, so "
                "its probability cannot be read from one forward pass. Choose other words with --answers "
                "or use --method generate"
            )
    shared = sorted(set(pos_ids) & set(neg_ids))
    if shared:
        raise InputError(f"answers {positive!r} and {negative!r} share the token ids {shared}")
    return AnswerTokens(positive, negative, tuple(pos_ids), tuple(neg_ids), tuple(pos_var), tuple(neg_var))


def low_answer_mass(mass: npt.ArrayLike | None, below: float = LOW_ANSWER_MASS) -> float | None:
    """The mean of the finite per-row answer masses when it is below `below`, else None (also when
    there is no finite mass: the generate method, or NaN logits)."""
    if mass is None:
        return None
    values = np.asarray(mass, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not values.size:
        return None
    mean = float(values.mean())
    return mean if mean < below else None
