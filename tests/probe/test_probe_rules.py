"""The LG6xx rules, the differential verdict and the report, on hand-made contexts (no model, no torch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loraguard.codes import CATEGORIES, RULES
from loraguard.errors import DataFormatError, InputError
from loraguard.findings import Severity
from loraguard.probe import (
    BatchCheck,
    Effect,
    ProbeContext,
    ProbeThresholds,
    Side,
    differential,
    sample_rows,
)
from loraguard.probe.rules import all_rules, run_rules

SPREAD = np.linspace(0.05, 0.95, 16)
HEALTHY_EFFECT = Effect(mean_kl=0.8, max_logit_diff=5.0, max_prob_diff=0.4, mean_prob_diff=0.1, rows=16)


def side(values: Any, *, finite: Any = None, parsed: Any = None, texts: Any = None) -> Side:
    p = np.asarray(values, dtype=np.float64)
    fin = np.isfinite(p) if finite is None else np.asarray(finite, dtype=bool)
    ok = (np.isfinite(p) & fin) if parsed is None else np.asarray(parsed, dtype=bool)
    return Side(probabilities=p, parsed=ok, logits_finite=fin, texts=texts)


def ctx(
    adapted: Any = SPREAD,
    base: Any = SPREAD,
    *,
    effect: Effect = HEALTHY_EFFECT,
    method: str = "logits",
    batch: BatchCheck | None = None,
    **sides: Any,
) -> ProbeContext:
    a = sides.get("adapted_side") or side(adapted)
    b = sides.get("base_side") or side(base)
    return ProbeContext(
        row_ids=tuple(str(i) for i in range(a.probabilities.size)),
        method=method,
        adapted=a,
        base=b,
        effect=effect,
        batch=batch,
    )


def codes(c: ProbeContext) -> dict[str, Severity]:
    return {f.code: f.severity for f in run_rules(c)}


def test_probe_rules_are_registered_documented_and_separate() -> None:
    probe_rules = [r for r in all_rules() if r.code.startswith("LG6")]
    assert [r.name for r in probe_rules] == [
        "no-effect",
        "degenerate-output",
        "low-spread",
        "batch-inconsistency",
        "non-finite-output",
        "parse-failure",
        "small-effect",
        "answer-words-ignored",
    ]
    for r in probe_rules:
        assert r.category in CATEGORIES
        for section in ("What it checks:", "Why it matters:", "How to fix:"):
            assert section in r.doc
        assert r.func(object()) == []  # handed a CheckContext (or anything else), a probe rule does nothing
    assert RULES["LG602"].severity is Severity.ERROR and RULES["LG603"].severity is Severity.WARNING


def test_check_never_runs_probe_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import loraguard.checks.checker as checker

    seen: list[str] = []
    real = checker.select_rules

    def recording(select: Any = (), ignore: Any = (), **kwargs: Any) -> Any:
        rules = real(select, ignore, **kwargs)
        seen.extend(r.code for r in rules)
        return rules

    monkeypatch.setattr(checker, "select_rules", recording)
    (tmp_path / "adapter_config.json").write_text("{}")
    checker.check(tmp_path)
    checker.check(tmp_path, select=["LG6"])
    assert seen and not [c for c in seen if c.startswith("LG6")]


def test_healthy_context_has_no_findings() -> None:
    c = ctx()
    assert run_rules(c) == []
    assert differential(c, [])[0] is None
    assert "healthy" in differential(c, [])[1]


def test_no_effect_thresholds() -> None:
    zero = Effect(mean_kl=0.0, max_logit_diff=0.0, max_prob_diff=0.0, mean_prob_diff=0.0, rows=16)
    c = ctx(effect=zero)
    assert codes(c) == {"LG601": Severity.ERROR}  # not also LG607
    assert differential(c, run_rules(c))[0] == "adapter"
    tiny_kl_big_logit = Effect(mean_kl=1e-8, max_logit_diff=1e-3, max_prob_diff=1e-5, mean_prob_diff=1e-6, rows=16)
    assert codes(ctx(effect=tiny_kl_big_logit)) == {"LG607": Severity.WARNING}
    unknown = Effect(mean_kl=None, max_logit_diff=None, max_prob_diff=None, mean_prob_diff=None, rows=0)
    assert "LG601" not in codes(ctx(effect=unknown))


def test_degenerate_only_with_the_adapter_blames_the_adapter() -> None:
    c = ctx(adapted=np.zeros(16))
    found = run_rules(c)
    assert {f.code for f in found} == {"LG602"}  # low-spread stays quiet when degenerate fires
    assert found[0].evidence["base_degenerate"] is False
    blame, words = differential(c, found)
    assert blame == "adapter" and words == "degenerate only with the adapter: the adapter is the problem"


def test_degenerate_with_and_without_the_adapter_blames_base_or_prompt() -> None:
    c = ctx(adapted=np.full(16, 0.3), base=np.full(16, 0.7))
    found = run_rules(c)
    blame, words = differential(c, found)
    assert blame == "base-or-prompt"
    assert words == "degenerate with and without the adapter: the prompt or method is the problem"


def test_two_values_are_degenerate_but_clusters_are_not() -> None:
    assert "LG602" in codes(ctx(adapted=[0.0, 1.0] * 8))
    assert "LG602" not in codes(ctx(adapted=[0.0, 1.0] * 3))  # fewer than 8 rows: two values may be chance
    rng = np.random.default_rng(0)
    clustered = np.concatenate([0.1 + 0.01 * rng.standard_normal(8), 0.9 + 0.01 * rng.standard_normal(8)])
    assert codes(ctx(adapted=clustered)) == {}
    assert "LG602" in codes(ctx(adapted=0.5 + 1e-4 * rng.standard_normal(16)))  # std < 1e-3


def test_low_spread_is_a_warning_naming_its_reasons() -> None:
    rng = np.random.default_rng(1)
    flat = 0.1 + 0.02 * rng.standard_normal(16)
    found = run_rules(ctx(adapted=flat))
    assert [(f.code, f.severity) for f in found] == [("LG603", Severity.WARNING)]
    assert "std" in found[0].message and "mean" in found[0].message and "max" in found[0].message
    assert differential(ctx(adapted=flat), found)[0] is None


def test_non_finite_output() -> None:
    values = SPREAD.copy()
    values[3] = np.nan
    finite = np.isfinite(values)
    c = ctx(adapted_side=side(values, finite=finite))
    found = run_rules(c)
    assert {f.code: f.evidence["rows"] for f in found} == {"LG605": 1}
    assert differential(c, found)[0] == "adapter"
    both = ctx(adapted_side=side(values, finite=finite), base_side=side(values, finite=finite))
    assert differential(both, run_rules(both))[0] == "base-or-prompt"


def test_batch_inconsistency() -> None:
    ok = BatchCheck(batch_size=8, max_diff={"left-padded": 1e-6, "prefix-cache": 2e-7}, rows=())
    assert codes(ctx(batch=ok)) == {}
    bad = BatchCheck(batch_size=8, max_diff={"left-padded": 0.4, "prefix-cache": 1e-6}, rows=("3", "7"))
    found = run_rules(ctx(batch=bad))
    assert [f.code for f in found] == ["LG604"] and "left-padded 0.4" in found[0].message
    assert differential(ctx(batch=bad), found)[0] is None


@pytest.mark.parametrize(
    ("failures", "expected"), [(0, None), (2, None), (3, Severity.WARNING), (8, Severity.WARNING), (9, Severity.ERROR)]
)
def test_parse_failure_thresholds(failures: int, expected: Severity | None) -> None:
    parsed = np.ones(40, dtype=bool)  # 2/40 = 5% is fine, 3/40 a warning, 8/40 = 20% still, 9/40 an error
    parsed[:failures] = False
    a = side(np.linspace(0.05, 0.95, 40), parsed=parsed)
    assert codes(ctx(adapted_side=a, method="generate")).get("LG606") is expected
    assert "LG606" not in codes(ctx(adapted_side=a, method="logits"))


def test_thresholds_are_configurable() -> None:
    rng = np.random.default_rng(2)
    values = 0.5 + 0.002 * rng.standard_normal(16)
    assert "LG602" not in codes(ctx(adapted=values))
    strict = ProbeContext(
        row_ids=tuple(map(str, range(16))),
        method="logits",
        adapted=side(values),
        base=side(SPREAD),
        effect=HEALTHY_EFFECT,
        thresholds=ProbeThresholds(degenerate_std=0.01),
    )
    assert "LG602" in codes(strict)


def test_report_json_schema_without_nan() -> None:
    from loraguard.checks.report import CheckReport
    from loraguard.findings import sort_findings, verdict_of
    from loraguard.probe import ProbeReport

    values = SPREAD.copy()
    values[0] = np.nan
    c = ctx(adapted_side=side(values), batch=BatchCheck(8, {"left-padded": None, "prefix-cache": 0.0}, ()))
    found = sort_findings(run_rules(c))
    blame, words = differential(c, found)
    static = CheckReport(verdict=verdict_of(()), adapter={}, base=None, findings=())
    report = ProbeReport(
        verdict=verdict_of(found),
        adapter="a",
        base="b",
        method="logits",
        template="chat",
        data="builtin",
        samples=16,
        findings=found,
        check=static,
        stopped=False,
        blame=blame,
        differential=words,
        context=c,
    )
    data = json.loads(report.to_json())
    assert data["schema"] == "loraguard.probe/1" and data["verdict"] == "fail" and data["blame"] == "adapter"
    assert set(data["stats"]) == {"adapted", "base"}
    assert set(data["stats"]["adapted"]) >= {"mean", "std", "min", "max", "distinct"}
    assert set(data["effect"]) >= {"mean_kl", "max_logit_diff"}
    assert data["predictions"][0] == {"row_id": "0", "adapted": None, "base": pytest.approx(0.05)}
    assert report.exit_code() == 1


def test_sample_rows(tmp_path: Path) -> None:
    rows, source = sample_rows()
    assert (len(rows), source) == (16, "builtin")
    assert len(sample_rows(samples=100)[0]) == 24
    with pytest.raises(InputError):
        sample_rows(samples=0)
    bad = tmp_path / "bad.csv"
    bad.write_text("row_id,body\n1,hello\n")
    with pytest.raises(DataFormatError, match="missing column"):
        sample_rows(bad)


def test_cli_bad_input_exits_2_before_loading_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from loraguard.cli.app import main

    bad = tmp_path / "bad.csv"
    bad.write_text("row_id,body\n1,hello\n")
    assert main(["probe", str(tmp_path), "--base", str(tmp_path), "--data", str(bad)]) == 2
    assert "missing column" in capsys.readouterr().err
    assert main(["probe", str(tmp_path), "--base", str(tmp_path), "--samples", "0"]) == 2
    assert main(["probe", str(tmp_path), "--base", str(tmp_path), "--method", "sample"]) == 2
    assert main(["probe", str(tmp_path)]) == 2  # --base is required


# --- issue 13: one verdict when the base is degenerate; answer words the model ignores ------------------

ZERO_EFFECT = Effect(mean_kl=0.0, max_logit_diff=0.0, max_prob_diff=0.0, mean_prob_diff=0.0, rows=16)


def test_no_effect_on_a_degenerate_base_is_inconclusive_and_blames_the_prompt() -> None:
    c = ctx(adapted=np.full(16, 0.4), base=np.full(16, 0.4), effect=ZERO_EFFECT)
    found = run_rules(c)
    assert codes(c) == {"LG601": Severity.WARNING, "LG602": Severity.ERROR}
    no_effect = next(f for f in found if f.code == "LG601")
    assert no_effect.evidence["inconclusive"] is True and no_effect.message.startswith("inconclusive")
    blame, words = differential(c, found)
    assert blame == "base-or-prompt" and "adapter is the problem" not in words
    assert words.startswith("degenerate with and without the adapter: the prompt or method is the problem")
    assert "cannot be judged" in words


def test_no_effect_on_a_spread_base_still_blames_the_adapter() -> None:
    c = ctx(effect=ZERO_EFFECT)
    [found] = run_rules(c)
    assert found.severity is Severity.ERROR and found.evidence["inconclusive"] is False
    assert differential(c, [found])[0] == "adapter"


def test_small_effect_is_not_reported_on_a_degenerate_base() -> None:
    small = Effect(mean_kl=1e-3, max_logit_diff=0.1, max_prob_diff=1e-5, mean_prob_diff=1e-6, rows=16)
    assert "LG607" in codes(ctx(effect=small))
    assert "LG607" not in codes(ctx(adapted=np.full(16, 0.4), base=np.full(16, 0.4), effect=small))


def _massed(values: Any, mass: float) -> Side:
    s = side(values)
    return Side(s.probabilities, s.parsed, s.logits_finite, answer_mass=np.full(s.probabilities.size, mass))


def test_answer_words_the_model_ignores_are_a_warning() -> None:
    ignored = ctx(adapted_side=_massed(SPREAD, 0.002), base_side=_massed(SPREAD, 0.003))
    [found] = run_rules(ignored)
    assert (found.code, found.severity, found.category) == ("LG608", Severity.WARNING, "answer-mass")
    assert "0.20% of the probability mass" in found.message and "without the adapter too (0.30%)" in found.message
    assert found.evidence["mean_answer_mass"] == pytest.approx(0.002)
    assert differential(ignored, [found])[0] is None
    by_adapter = run_rules(ctx(adapted_side=_massed(SPREAD, 0.002), base_side=_massed(SPREAD, 0.9)))
    assert "trained to answer otherwise" in by_adapter[0].message
    assert run_rules(ctx(adapted_side=_massed(SPREAD, 0.5), base_side=_massed(SPREAD, 0.002))) == []
    assert "LG608" not in codes(ctx(adapted_side=_massed(SPREAD, 0.002), method="generate"))


def test_degenerate_predictions_carry_the_answer_mass_instead() -> None:
    c = ctx(adapted_side=_massed(np.zeros(16), 1e-9), base_side=_massed(SPREAD, 0.8))
    [found] = run_rules(c)
    assert found.code == "LG602" and found.evidence["mean_answer_mass"] == pytest.approx(1e-9)
    assert "the answer tokens get 0.00% of the probability mass" in found.message
