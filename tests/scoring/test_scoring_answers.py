"""Answer tokens: single-token case and leading-space variants only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loraguard.errors import InputError
from loraguard.scoring.answers import answer_tokens, parse_answers_option

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_tok(tiny_base: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_base)


def test_variants_are_single_tokens_and_multi_token_ones_are_left_out(tiny_tok: Any) -> None:
    at = answer_tokens(tiny_tok)
    assert "Yes" in at.positive_variants and "No" in at.negative_variants
    for variant, token_id in zip(
        at.positive_variants + at.negative_variants, at.positive_ids + at.negative_ids, strict=True
    ):
        assert tiny_tok.encode(variant, add_special_tokens=False) == [token_id]
    # the tiny tokenizer has no single token for "YES": it must not sneak in by its first piece
    assert len(tiny_tok.encode("YES", add_special_tokens=False)) > 1
    assert "YES" not in at.positive_variants
    assert not set(at.positive_ids) & set(at.negative_ids)


def test_real_qwen_tokenizer_has_six_variants_each(shared_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(shared_dir / "corpus" / "tokenizers" / "qwen2.5")
    at = answer_tokens(tok)
    assert at.positive_variants == ("Yes", " Yes", "yes", " yes", "YES", " YES")
    assert at.positive_ids == (9454, 7414, 9693, 9834, 14004, 14080)
    assert at.negative_ids == (2753, 2308, 2152, 902, 8996, 5664)


def test_no_single_token_variant_is_an_error(tiny_tok: Any) -> None:
    with pytest.raises(InputError, match="answer 'Xylophonically': none of its variants"):
        answer_tokens(tiny_tok, "Xylophonically,No")


def test_custom_answers(tiny_tok: Any) -> None:
    at = answer_tokens(tiny_tok, "yes, no")
    assert at.positive == "yes" and "Yes" in at.positive_variants


@pytest.mark.parametrize("spec", ["Yes", "Yes,No,Maybe", "Yes,", "Yes,Yes"])
def test_bad_answers_option(spec: str) -> None:
    with pytest.raises(InputError, match="answers"):
        parse_answers_option(spec)
