"""The logits method: batched and prefix-cached scores equal one-row-at-a-time scores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scoring_helpers import mixed_rows

from loraguard.scoring import score_rows
from loraguard.scoring.data import rows_from_records

pytestmark = pytest.mark.slow

TOL = 1e-4


@pytest.fixture(scope="module")
def rows() -> Any:
    return rows_from_records(mixed_rows())


@pytest.fixture(scope="module")
def reference(loaded: Any, rows: Any) -> Any:
    """One row at a time: no padding, no cache."""
    return score_rows(loaded.model, loaded.tokenizer, rows, batch_size=1, prefix_cache=False)


def test_reference_is_spread_and_lengths_are_mixed(reference: Any) -> None:
    p = reference.probabilities
    assert p.std() > 0.1 and ((p > 0.05) & (p < 0.95)).sum() >= 5
    lengths = [len(i) for i in reference.prompts.input_ids]
    assert max(lengths) > 1.3 * min(lengths)
    assert dict(reference.stage_counts) == {"logits": len(p), "nonfinite": 0}


@pytest.mark.parametrize("batch_size", [3, 8])
@pytest.mark.parametrize("prefix_cache", [False, True])
def test_batched_equals_single(loaded: Any, rows: Any, reference: Any, batch_size: int, prefix_cache: bool) -> None:
    result = score_rows(loaded.model, loaded.tokenizer, rows, batch_size=batch_size, prefix_cache=prefix_cache)
    assert result.row_ids == reference.row_ids
    np.testing.assert_allclose(result.probabilities, reference.probabilities, atol=TOL, rtol=0)
    np.testing.assert_allclose(result.answer_mass, reference.answer_mass, atol=TOL, rtol=1e-3)
    if prefix_cache:
        # three rules share a prefix; the one-row rule goes through the plain path
        assert result.timing.prefix_tokens_skipped > 0.3 * result.timing.prompt_tokens
    else:
        assert result.timing.prefix_tokens_skipped == 0


def test_pad_token_content_does_not_matter(
    loaded: Any, rows: Any, reference: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Left padding is masked: padding with another token id gives the same scores."""
    import loraguard.scoring.logits as logits

    monkeypatch.setattr(logits, "pad_token_id", lambda _tok: 7)
    result = score_rows(loaded.model, loaded.tokenizer, rows, batch_size=8, prefix_cache=False)
    np.testing.assert_allclose(result.probabilities, reference.probabilities, atol=TOL, rtol=0)


def test_unmasked_padding_would_be_caught(
    loaded: Any, rows: Any, reference: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guard for the test above: if the mask let padding through, the scores would move."""
    import loraguard.scoring.logits as logits

    real = logits.left_pad

    def unmasked(seqs: Any, pad_id: int) -> Any:
        ids, mask, pos = real(seqs, pad_id)
        return ids, [[1] * len(m) for m in mask], pos

    monkeypatch.setattr(logits, "left_pad", unmasked)
    result = score_rows(loaded.model, loaded.tokenizer, rows, batch_size=8, prefix_cache=False)
    assert np.abs(result.probabilities - reference.probabilities).max() > 10 * TOL


def test_prefix_split_inside_a_bpe_merge(loaded: Any, tmp_path: Path) -> None:
    """Prompts whose common *text* ends mid-token ("Post: " then "banana"/"bandana"): tokenizing the
    text prefix alone gives ids that are not a prefix of the full ids; the planner splits on the
    full prompts' ids, so cached scores still equal single-row scores."""
    tok = loaded.tokenizer
    template = tmp_path / "t.j2"
    template.write_text("Rule: {{ rule }}\nExamples: {{ positive_example_1 }}\nPost: {{ body }}")
    base = mixed_rows()[0]
    records = [
        {**base, "row_id": str(i), "body": body}
        for i, body in enumerate(["banana split", "bandana", "band practice tonight", "ban him"])
    ]
    text_prefix = f"Rule: {base['rule']}\nExamples: {base['positive_example_1']}\nPost: "
    full = tok(text_prefix + "banana split")["input_ids"]
    alone = tok(text_prefix)["input_ids"]
    assert full[: len(alone)] != alone  # the trap is real for this tokenizer
    single = score_rows(loaded.model, tok, records, template=template, batch_size=1, prefix_cache=False)
    cached = score_rows(loaded.model, tok, records, template=template, batch_size=4, prefix_cache=True)
    assert cached.timing.prefix_tokens_skipped > 0
    np.testing.assert_allclose(cached.probabilities, single.probabilities, atol=TOL, rtol=0)


@pytest.mark.parametrize("template", ["chat", "plain"])
def test_prompts_reencode_to_the_scored_ids(loaded: Any, rows: Any, template: str) -> None:
    result = score_rows(loaded.model, loaded.tokenizer, rows, template=template, batch_size=8)
    enc = result.prompts
    for prompt, ids in zip(enc.prompts, enc.input_ids, strict=True):
        assert loaded.tokenizer(prompt, add_special_tokens=enc.add_special_tokens)["input_ids"] == list(ids)


def test_score_rows_accepts_plain_dicts_and_validates_them(loaded: Any) -> None:
    from loraguard.errors import DataFormatError

    bad = mixed_rows()[:3]
    del bad[1]["rule"]
    with pytest.raises(DataFormatError):
        score_rows(loaded.model, loaded.tokenizer, [mixed_rows()[0], {"row_id": "x"}])


def test_generate_method_counts_stages(loaded: Any) -> None:
    rows = mixed_rows()[:14]
    single = score_rows(
        loaded.model, loaded.tokenizer, rows, method="generate", template="chat-v2", batch_size=1, max_new_tokens=4
    )
    counts = dict(single.stage_counts)
    assert set(counts) == {"number", "regex", "keyword", "default"}
    assert sum(counts.values()) == len(rows)
    assert int((~single.parsed).sum()) == counts["default"]
    assert single.parse_failure_share == pytest.approx(counts["default"] / len(rows))
    assert single.texts is not None and len(single.texts) == len(rows)
    batched = score_rows(
        loaded.model, loaded.tokenizer, rows, method="generate", template="chat-v2", batch_size=8, max_new_tokens=4
    )
    same = sum(a == b for a, b in zip(single.texts, batched.texts or (), strict=True))
    assert same >= 0.9 * len(rows)  # left-padded greedy decoding agrees with one-row decoding


def test_prefix_path_is_cross_checked_and_turned_off_on_mismatch(
    loaded: Any, rows: Any, reference: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An architecture whose forward rescales logits after the head (Gemma-2 soft-capping, Cohere's
    logit_scale...) would make head(hidden) wrong: the one-row cross-check catches it."""
    import loraguard.scoring.logits as logits

    real = logits._prefix_cache_support

    def rescaled(lm: Any) -> Any:
        decoder, head, kwarg = real(lm)
        return decoder, (lambda h: head(h) * 0.5), kwarg

    monkeypatch.setattr(logits, "_prefix_cache_support", rescaled)
    logits._CROSS_CHECKED.clear()  # verdicts are cached per model: start from none
    result = score_rows(loaded.model, loaded.tokenizer, rows, batch_size=8, prefix_cache=True)
    assert result.timing.prefix_tokens_skipped == 0
    assert result.notes and "prefix cache disabled: its logits differ" in result.notes[0]
    np.testing.assert_allclose(result.probabilities, reference.probabilities, atol=TOL, rtol=0)
    monkeypatch.undo()
    logits._CROSS_CHECKED.clear()
    healthy = score_rows(loaded.model, loaded.tokenizer, rows, batch_size=8, prefix_cache=True)
    assert healthy.notes == ()


def test_cross_check_runs_once_per_model_and_adapter(
    tiny_base: Any, adapters: Any, rows: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server scores many micro-batches: the two extra one-row passes run once per adapter, not per call,
    and a verdict that turned the cache off sticks (the notes say so on every call)."""
    import loraguard.scoring.logits as logits
    from loraguard.scoring.host import load_host

    lm = load_host(tiny_base, [adapters["alpha"], adapters["beta"]])
    calls: list[Any] = []
    real = logits._cross_check
    monkeypatch.setattr(logits, "_cross_check", lambda *a: calls.append(a) or real(*a))
    first = None
    for name in ("alpha", "alpha", "beta", "beta", "alpha"):
        with lm.activate(name):
            got = score_rows(lm.model, lm.tokenizer, rows, batch_size=8, prefix_cache=True)
        assert got.timing.prefix_tokens_skipped > 0 and got.notes == ()
        if name == "alpha":
            if first is not None:
                np.testing.assert_allclose(got.probabilities, first, atol=1e-6, rtol=0)
            first = got.probabilities
    assert len(calls) == 2  # alpha once, beta once
    monkeypatch.setattr(logits, "_cross_check", lambda *a: "forced mismatch")
    lm2 = load_host(tiny_base, [adapters["alpha"]])
    with lm2.activate("alpha"):
        for _ in range(2):
            off = score_rows(lm2.model, lm2.tokenizer, rows, batch_size=8, prefix_cache=True)
            assert off.timing.prefix_tokens_skipped == 0 and "forced mismatch" in off.notes[0]


def test_prompt_longer_than_the_context_is_refused(loaded: Any) -> None:
    from loraguard.errors import InputError

    row = {**mixed_rows()[0], "body": "spam " * 5000}
    with pytest.raises(
        InputError,
        match=r"row_id '9000': the prompt has \d+ tokens, more than the model's "
        r"context window of 4096",
    ):
        score_rows(loaded.model, loaded.tokenizer, [row])


def test_timing_is_reported(reference: Any) -> None:
    t = reference.timing
    assert t.rows == len(reference.row_ids) and t.seconds > 0 and t.rows_per_second > 0
    assert json.dumps(t.to_dict())
