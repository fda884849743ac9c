"""`loraguard score` end to end on tiny models."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scoring_helpers import write_csv

from loraguard.scoring.builtin_rows import COLUMNS, builtin_rows

pytestmark = pytest.mark.slow

Main = Callable[[list[str]], int]


def read_preds(path: Path) -> dict[str, float]:
    with path.open(newline="") as f:
        reader = csv.reader(f)
        assert next(reader) == ["row_id", "rule_violation"]
        return {rid: float(p) for rid, p in reader}


def test_score_writes_predictions_and_metrics(
    cli: Main, tiny_base: Path, rows_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, metrics, prompts = tmp_path / "pred.csv", tmp_path / "m.json", tmp_path / "p.jsonl"
    code = cli(
        [
            "score",
            str(rows_csv),
            "--base",
            str(tiny_base),
            "--out",
            str(out),
            "--metrics-json",
            str(metrics),
            "--dump-prompts",
            str(prompts),
        ]
    )
    text = capsys.readouterr().out
    assert code == 0
    preds = read_preds(out)
    assert list(preds) == [r["row_id"] for r in builtin_rows()]
    assert all(0.0 <= p <= 1.0 for p in preds.values())
    assert "ROC AUC" in text and "mean per-rule AUC" in text and "distribution: mean" in text
    data = json.loads(metrics.read_text())
    run = data["runs"][0]
    assert data["schema"] == "loraguard.score/1" and run["adapter"] is None
    assert set(run["metrics"]["per_rule"]) == {r["rule"] for r in builtin_rows()}
    assert run["metrics"]["auc"] is not None and run["degenerate"] is False
    assert run["stage_counts"] == {"logits": 24, "nonfinite": 0}
    # the dump holds exactly the ids that were scored, and the prompt re-encodes to them
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_base)
    lines = [json.loads(line) for line in prompts.read_text().splitlines()]
    assert [d["row_id"] for d in lines] == list(preds)
    for d in lines:
        assert tok(d["prompt"], add_special_tokens=False)["input_ids"] == d["input_ids"]
        assert set(d) >= {"row_id", "prompt", "input_ids", "positive_token_ids", "negative_token_ids"}
        assert d["positive_token_ids"] and d["negative_token_ids"]


def test_refuses_to_overwrite_before_loading_anything(
    cli: Main, rows_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pred.csv"
    out.write_text("keep me\n")
    code = cli(["score", str(rows_csv), "--base", str(tmp_path / "no-such-base"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"Error: output {out} already exists: pass --overwrite to replace it" in err
    assert out.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.csv"]


def test_overwrite_replaces(cli: Main, tiny_base: Path, rows_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred.csv"
    out.write_text("old\n")
    assert cli(["score", str(rows_csv), "--base", str(tiny_base), "--out", str(out), "--overwrite", "--quiet"]) == 0
    assert len(read_preds(out)) == 24


def test_several_adapters_several_files(
    cli: Main,
    tiny_base: Path,
    adapters: dict[str, Path],
    rows_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "pred.csv"
    code = cli(
        [
            "score",
            str(rows_csv),
            "--base",
            str(tiny_base),
            "--adapter",
            str(adapters["alpha"]),
            "--adapter",
            str(adapters["beta"]),
            "--out",
            str(out),
            "-q",
        ]
    )
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.alpha.csv", "pred.beta.csv"]
    a = np.array(list(read_preds(tmp_path / "pred.alpha.csv").values()))
    b = np.array(list(read_preds(tmp_path / "pred.beta.csv").values()))
    assert np.abs(a - b).max() > 0.05
    text = capsys.readouterr().out
    assert "adapter alpha:" in text and "adapter beta:" in text


def test_no_adapter_is_the_bare_base(cli: Main, tiny_base: Path, loaded: Any, rows_csv: Path, tmp_path: Path) -> None:
    from loraguard.scoring import score_rows

    out = str(tmp_path / "p.csv")
    assert cli(["score", str(rows_csv), "--base", str(tiny_base), "--out", out, "-q", "--dtype", "float32"]) == 0
    got = np.array(list(read_preds(tmp_path / "p.csv").values()))
    want = score_rows(loaded.model, loaded.tokenizer, builtin_rows()).probabilities
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_fail_on_degenerate(
    cli: Main,
    tiny_base: Path,
    adapters: dict[str, Path],
    rows_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["score", str(rows_csv), "--base", str(tiny_base), "--adapter", str(adapters["flat"]), "-q"]
    assert cli([*args, "--out", str(tmp_path / "a.csv")]) == 0  # alert, but no gate
    assert "ALERT error degenerate: predictions are degenerate" in capsys.readouterr().out
    assert cli([*args, "--out", str(tmp_path / "b.csv"), "--fail-on-degenerate"]) == 1
    assert "ALERT error degenerate: predictions are degenerate" in capsys.readouterr().out
    assert (tmp_path / "b.csv").exists()  # the predictions are still written, for inspection
    # a healthy adapter passes the same gate
    assert (
        cli(
            [
                "score",
                str(rows_csv),
                "--base",
                str(tiny_base),
                "--adapter",
                str(adapters["alpha"]),
                "-q",
                "--out",
                str(tmp_path / "c.csv"),
                "--fail-on-degenerate",
            ]
        )
        == 0
    )


def test_time_budget_stops_early(
    cli: Main, tiny_base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [{**r, "row_id": f"{k}-{r['row_id']}"} for k in range(25) for r in builtin_rows()]  # 600 rows
    data = write_csv(tmp_path / "big.csv", rows)
    out = tmp_path / "pred.csv"
    code = cli(
        [
            "score",
            str(data),
            "--base",
            str(tiny_base),
            "--out",
            str(out),
            "--method",
            "generate",
            "--batch-size",
            "1",
            "--time-budget",
            "1s",
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "Error: time budget 1.0s would be exceeded by" in err and "projected" in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [data]


def test_bad_csv_names_column(cli: Main, tiny_base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_csv(tmp_path / "d.csv", builtin_rows(), [c for c in COLUMNS if c != "rule"])
    assert cli(["score", str(data), "--base", str(tiny_base), "--out", str(tmp_path / "p.csv")]) == 2
    assert "missing column rule" in capsys.readouterr().err


def test_non_utf8_rows_are_reported(
    cli: Main, tiny_base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_csv(tmp_path / "d.csv", builtin_rows())
    data.write_bytes(data.read_bytes().replace(b"cheapest", b"ch\xe9apest"))
    assert cli(["score", str(data), "--base", str(tiny_base), "--out", str(tmp_path / "p.csv"), "-q"]) == 0
    assert "1 row had bytes that are not UTF-8, decoded with U+FFFD (row_id 9002)" in capsys.readouterr().err


def test_generate_method_reports_parser_stages(
    cli: Main, tiny_base: Path, rows_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli(
        [
            "score",
            str(rows_csv),
            "--base",
            str(tiny_base),
            "--out",
            str(tmp_path / "p.csv"),
            "--method",
            "generate",
            "--template",
            "chat-v2",
            "--max-new-tokens",
            "3",
            "-q",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "parser stages: number" in text and "parse failures (default used)" in text


@pytest.mark.slow
def test_report_html_and_monitor_alerts_in_metrics(
    cli: Main, tiny_base: Path, adapters: dict[str, Path], rows_csv: Path, tmp_path: Path
) -> None:
    import json

    html = tmp_path / "report.html"
    metrics = tmp_path / "m.json"
    assert (
        cli(
            [
                "score",
                str(rows_csv),
                "--base",
                str(tiny_base),
                "--adapter",
                str(adapters["flat"]),
                "-q",
                "--out",
                str(tmp_path / "p.csv"),
                "--report",
                str(html),
                "--metrics-json",
                str(metrics),
            ]
        )
        == 0
    )
    page = html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<script" not in page
    rules = {a["rule"] for run in json.loads(metrics.read_text())["runs"] for a in run["alerts"]}
    assert "degenerate" in rules


@pytest.mark.slow
def test_answer_words_a_random_model_ignores_are_an_alert(
    cli: Main, tiny_base: Path, rows_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from transformers import AutoTokenizer

    from loraguard.demo.degenerate import BASE_INIT_RANGE, BASE_SEED
    from loraguard.demo.tiny import build_tiny_base

    # The probe demo's random base before `answer_in_words`: about 0.03% of its probability on Yes/No.
    tok = AutoTokenizer.from_pretrained(str(tiny_base))
    base = build_tiny_base(tmp_path / "random", seed=BASE_SEED, tokenizer=tok, initializer_range=BASE_INIT_RANGE)
    metrics = tmp_path / "m.json"
    args = ["score", str(rows_csv), "--base", str(base), "--out", str(tmp_path / "p.csv")]
    assert cli([*args, "--metrics-json", str(metrics)]) == 0  # a warning: the exit code stays 0
    assert "ALERT warning answer-mass: the answer tokens (Yes/No) get" in capsys.readouterr().out
    run = json.loads(metrics.read_text())["runs"][0]
    [alert] = [a for a in run["alerts"] if a["rule"] == "answer-mass"]
    assert alert["evidence"]["mean_answer_mass"] == pytest.approx(run["mean_answer_mass"])
    assert run["mean_answer_mass"] < 0.01


@pytest.mark.slow
def test_a_model_answering_with_the_answer_words_raises_no_answer_alert(
    cli: Main, rows_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from loraguard.demo.degenerate import build_probe_base

    base = build_probe_base(tmp_path / "base")  # answers with Yes/No (answer_in_words)
    assert cli(["score", str(rows_csv), "--base", str(base), "--out", str(tmp_path / "p.csv")]) == 0
    assert "answer-mass" not in capsys.readouterr().out
