"""The case study's 3-stage parser, with every stage counted."""

from __future__ import annotations

import pytest

from loraguard.scoring.parse import parse_answer, parse_answers


@pytest.mark.parametrize(
    ("text", "value", "stage"),
    [
        ("0.0", 0.0, "number"),
        (" 0.85\n", 0.85, "number"),
        ("7", 1.0, "number"),  # clamped, as the case study does
        ("I think 0.7", 0.7, "regex"),
        ("probably 1.0 sure", 1.0, "regex"),
        ("yes it violates", 0.8, "keyword"),
        ("This VIOLATES the rule", 0.8, "keyword"),
        ("banana", 0.5, "default"),
        ("", 0.5, "default"),
        ("nan", 0.5, "default"),  # float('nan') parses in Python; it is not an answer
        ("inf", 0.5, "default"),
    ],
)
def test_stages(text: str, value: float, stage: str) -> None:
    answer = parse_answer(text)
    assert answer.value == pytest.approx(value)
    assert answer.stage == stage
    assert answer.parsed == (stage != "default")


def test_counts_are_honest() -> None:
    summary = parse_answers(["0.0", "I think 0.7", "yes it violates", "banana", "0.0"])
    assert dict(summary.stage_counts) == {"number": 2, "regex": 1, "keyword": 1, "default": 1}
    assert summary.parsed.tolist() == [True, True, True, False, True]
    assert summary.values.tolist() == pytest.approx([0.0, 0.7, 0.8, 0.5, 0.0])
    assert summary.stages == ("number", "regex", "keyword", "default", "number")


def test_case_study_failure_parses_perfectly() -> None:
    """The case study's failure: 100% parse success and every value 0.0."""
    from loraguard.monitor import evaluate, summarize

    summary = parse_answers(["0.0"] * 10)
    assert summary.parsed.all()
    assert "degenerate" in {a.rule for a in evaluate(summarize(summary.values, parsed=summary.parsed))}
