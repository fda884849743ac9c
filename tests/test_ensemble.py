"""Ensembling: rank/mean/geometric formulas, per-group ranks, alignment, and the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import rankdata

from loraguard.ensemble import ensemble, normalised_ranks, parse_weights
from loraguard.errors import DataFormatError, InputError
from loraguard.monitor.predictions import Predictions, read_labels, read_predictions

Run = Callable[[Sequence[str]], tuple[int, str, str]]
RNG = np.random.default_rng(9)
IDS = np.array([str(i) for i in range(200)])
A, B, C = RNG.beta(2, 5, 200), RNG.beta(5, 2, 200), RNG.random(200)


def _p(values: np.ndarray, source: str, ids: np.ndarray = IDS) -> Predictions:
    return Predictions(ids, values, source=source)


def test_rank_average_is_the_weighted_sum_of_normalised_ranks() -> None:
    out = ensemble([_p(A, "a"), _p(B, "b"), _p(C, "c")], weights=[5, 3, 2])
    expected = sum(w * rankdata(v, method="average") / 201 for w, v in ((0.5, A), (0.3, B), (0.2, C)))
    assert np.allclose(out.values, expected)
    assert out.row_ids.tolist() == IDS.tolist()
    assert out.source == "rank-ensemble(a, b, c)"


def test_rank_average_handles_ties_with_average_ranks() -> None:
    tied = np.array([0.0, 0.0, 0.5, 1.0])
    assert normalised_ranks(tied).tolist() == [1.5 / 5, 1.5 / 5, 3 / 5, 4 / 5]


def test_mean_and_geometric() -> None:
    mean = ensemble([_p(A, "a"), _p(B, "b")], method="mean", weights=[1, 3])
    assert np.allclose(mean.values, 0.25 * A + 0.75 * B)
    geo = ensemble([_p(A, "a"), _p(B, "b")], method="geometric")
    assert np.allclose(geo.values, np.sqrt(A * B))
    zero = ensemble([_p(np.zeros(200), "z"), _p(B, "b")], method="geometric")
    assert np.all(np.isfinite(zero.values)) and zero.values.max() < 1e-6


def test_group_ranks_are_computed_within_each_group() -> None:
    groups = np.where(np.arange(200) < 50, "rule A", "rule B")
    out = ensemble([_p(A, "a"), _p(B, "b")], groups=groups)
    for g in ("rule A", "rule B"):
        rows = groups == g
        n = rows.sum()
        expected = 0.5 * rankdata(A[rows]) / (n + 1) + 0.5 * rankdata(B[rows]) / (n + 1)
        assert np.allclose(out.values[rows], expected)
    by_mapping = ensemble([_p(A, "a"), _p(B, "b")], groups=dict(zip(IDS.tolist(), groups.tolist(), strict=True)))
    assert np.array_equal(by_mapping.values, out.values)


def test_inputs_are_aligned_by_row_id() -> None:
    order = np.random.default_rng(1).permutation(200)
    shuffled = ensemble([_p(A, "a"), _p(B[order], "b", IDS[order])])
    assert np.allclose(shuffled.values, ensemble([_p(A, "a"), _p(B, "b")]).values)


def test_bad_arguments() -> None:
    a, b = _p(A, "a.csv"), _p(B, "b.csv")
    with pytest.raises(DataFormatError, match="row_ids do not match"):
        ensemble([a, _p(B, "x.csv", np.array([f"x{i}" for i in range(200)]))])
    with pytest.raises(InputError, match="at least two"):
        ensemble([a])
    with pytest.raises(InputError, match="3 weight"):
        ensemble([a, b], weights=[1, 2, 3])
    with pytest.raises(InputError, match="non-negative"):
        ensemble([a, b], weights=[1, -1])
    with pytest.raises(InputError, match="only applies to the rank method"):
        ensemble([a, b], method="mean", groups=np.array(["g"] * 200))
    with pytest.raises(InputError, match="unknown ensemble method"):
        ensemble([a, b], method="median")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="'x' is not a number"):
        parse_weights("0.5,x")
    assert parse_weights("0.5, 0.3,0.2") == [0.5, 0.3, 0.2]


# ---- CLI -------------------------------------------------------------------------------------


def _csv(path: Path, values: np.ndarray, ids: Sequence[str] = tuple(IDS)) -> str:
    path.write_text(
        "row_id,rule_violation\n" + "\n".join(f"{i},{v!r}" for i, v in zip(ids, values.tolist(), strict=True)) + "\n"
    )
    return str(path)


def test_cli_writes_the_ensemble_and_monitors_it(run_cli: Run, tmp_path: Path) -> None:
    a, b = _csv(tmp_path / "a.csv", A), _csv(tmp_path / "b.csv", B)
    out = tmp_path / "e.csv"
    code, stdout, _ = run_cli(["ensemble", a, b, "--out", str(out), "--weights", "0.7,0.3"])
    assert code == 0
    assert f"wrote {out}" in stdout and "No alerts." in stdout
    written = read_predictions(out)
    assert np.allclose(written.values, ensemble([_p(A, "a"), _p(B, "b")], weights=[0.7, 0.3]).values)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv", "e.csv"]  # no temp file left


def test_cli_never_overwrites_without_the_flag(run_cli: Run, tmp_path: Path) -> None:
    a, b = _csv(tmp_path / "a.csv", A), _csv(tmp_path / "b.csv", B)
    out = tmp_path / "e.csv"
    out.write_text("precious")
    code, _, err = run_cli(["ensemble", a, b, "--out", str(out)])
    assert code == 2 and f"{out} already exists: pass --overwrite" in err
    assert out.read_text() == "precious"
    assert run_cli(["ensemble", a, b, "--out", str(out), "--overwrite"])[0] == 0
    assert len(read_predictions(out)) == 200


def test_cli_exits_1_when_the_result_is_degenerate(run_cli: Run, tmp_path: Path) -> None:
    z1, z2 = _csv(tmp_path / "z1.csv", np.zeros(200)), _csv(tmp_path / "z2.csv", np.zeros(200))
    code, out, _ = run_cli(["ensemble", z1, z2, "--out", str(tmp_path / "e.csv"), "--format", "json"])
    doc = json.loads(out)
    assert code == 1
    assert {"degenerate", "stuck"} <= {a["rule"] for a in doc["alerts"]}
    assert doc["inputs"]["method"] == "rank"


def test_cli_bad_inputs_exit_2(run_cli: Run, tmp_path: Path) -> None:
    a, b = _csv(tmp_path / "a.csv", A), _csv(tmp_path / "b.csv", B)
    other = _csv(tmp_path / "o.csv", B, ids=[f"x{i}" for i in range(200)])
    nan = tmp_path / "nan.csv"
    nan.write_text("row_id,rule_violation\n0,0.5\n1,nan\n")
    out = str(tmp_path / "e.csv")
    cases = {
        f"200 row_id(s) of {a} are not in {other}": ["ensemble", a, other, "--out", out],
        f"{nan} line 3: rule_violation = nan is NaN": ["ensemble", a, str(nan), "--out", out],
        "'abc' is not a number": ["ensemble", a, b, "--out", out, "--weights", "abc,1"],
        "1 weight(s) for 2 prediction files": ["ensemble", a, b, "--out", out, "--weights", "1"],
        "--group-by and --data go together": ["ensemble", a, b, "--out", out, "--group-by", "rule"],
        "at least two": ["ensemble", a, "--out", out],
    }
    for message, args in cases.items():
        code, _, err = run_cli(args)
        assert code == 2, args
        assert message in err, err
    assert not Path(out).exists()


@pytest.mark.shared
def test_cli_group_by_rule_on_the_jigsaw_file(run_cli: Run, tmp_path: Path, jigsaw_train: Path) -> None:
    labels = read_labels(jigsaw_train)
    ids = labels.row_ids.tolist()
    rng = np.random.default_rng(0)
    a = _csv(tmp_path / "a.csv", rng.random(len(ids)), ids)
    b = _csv(tmp_path / "b.csv", rng.random(len(ids)), ids)
    out = tmp_path / "e.csv"
    code, _, err = run_cli(["ensemble", a, b, "--out", str(out), "--group-by", "rule", "--data", str(jigsaw_train)])
    assert code == 0, err
    values = read_predictions(out).values
    for rule in np.unique(labels.groups):
        rows = labels.groups == rule
        n = int(rows.sum())
        assert values[rows].min() >= 1 / (n + 1) - 1e-12  # ranks normalised within the rule
        assert values[rows].max() <= n / (n + 1) + 1e-12


def test_cli_monitors_every_input_not_only_the_result(run_cli: Run, tmp_path: Path) -> None:
    """A constant input hides inside a rank average with a healthy one: the result spreads, the input does not."""
    stuck, healthy = _csv(tmp_path / "stuck.csv", np.zeros(200)), _csv(tmp_path / "b.csv", B)
    out = tmp_path / "e.csv"
    result = ensemble([_p(np.zeros(200), "stuck"), _p(B, "b")])
    assert np.std(result.values) > 0.05  # the output alone looks fine
    code, text, _ = run_cli(["ensemble", stuck, healthy, "--out", str(out), "--format", "json"])
    doc = json.loads(text)
    assert code == 1 and doc["verdict"] == "fail"
    degenerate = [a for a in doc["alerts"] if a["rule"] == "degenerate"]
    assert [a["segment"] for a in degenerate] == [f"input {stuck}"]
    assert degenerate[0]["message"].startswith(f"[input {stuck}] predictions are degenerate")
    assert [s["distinct"] for s in doc["inputs"]["input_summaries"]] == [1, 200]
    assert out.is_file()  # written, then judged, as monitor judges a file
    code, text, _ = run_cli(["ensemble", stuck, healthy, "--out", str(out), "--overwrite"])
    assert code == 1 and f"[input {stuck}] predictions are degenerate" in text


def test_input_alerts_label_each_input() -> None:
    from loraguard.ensemble import input_alerts

    assert input_alerts([_p(A, "a"), _p(B, "b")]) == ()
    alerts = input_alerts([_p(A, "a"), _p(np.full(200, 0.5), "flat")])
    assert {a.segment for a in alerts} == {"input flat"} and alerts[0].severity.value == "error"
