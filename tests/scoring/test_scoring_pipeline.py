"""The score pipeline around its executor seam, with an executor that hands back canned scores (no model):
what the pipeline guarantees whichever executor scored (when files are written, the monitor merge,
when the data warnings are said)."""

from __future__ import annotations

import json
from collections.abc import Generator, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest

from loraguard.errors import InputError, OutputExistsError
from loraguard.monitor import Monitor
from loraguard.scoring import ScoreOptions, rows_from_records, score_file
from loraguard.scoring.api import EncodedPrompts, PromptSink, ScoreResult, Timing
from loraguard.scoring.builtin_rows import builtin_rows
from loraguard.scoring.executor import Scored, ScoredRun, ScoreExecutor, ScoreInput, ScorePlan


def _rows(n: int = 12, *, empty_subreddit: bool = False) -> Any:
    rows = [dict(r) for r in builtin_rows()[:n]]
    if empty_subreddit:
        rows[3]["subreddit"] = ""
    return rows_from_records(rows, source="canned.csv")


def _result(row_ids: Sequence[str], probs: Sequence[float]) -> ScoreResult:
    p = np.asarray(probs, dtype=np.float64)
    return ScoreResult(
        row_ids=tuple(row_ids),
        probabilities=p,
        parsed=np.ones(len(p), dtype=bool),
        stage_counts=MappingProxyType({"logits": len(p)}),
        timing=Timing(1.0, 0.1, 0.9, len(p), 10 * len(p), 10 * len(p), 0),
        method="logits",
        prompts=None,
        answers=None,
        answer_mass=None,
        texts=None,
        template="chat",
    )


def _prompts(row_ids: Sequence[str]) -> EncodedPrompts:
    ids = tuple(row_ids)
    return EncodedPrompts(ids, tuple(f"p{r}" for r in ids), tuple((1, 2) for _ in ids), "chat", False)


class Canned(ScoreExecutor):
    """Hands back `probs` (one list per run) in `groups` (runs per `Scored`); `batches` > 0 splits each
    run's monitor into that many per-batch monitors, as the Ray executor does."""

    def __init__(
        self, rows: Any, probs: list[list[float]], groups: Sequence[int], *, up_front: bool = True, batches: int = 0
    ) -> None:
        self.rows, self.probs, self.groups, self.up_front, self.batches = rows, probs, groups, up_front, batches
        self.log: list[str] = []

    def prepare(self, plan: ScorePlan) -> ScoreInput:
        return ScoreInput(rows=self.rows if self.up_front else None)

    def execute(
        self, plan: ScorePlan, source: ScoreInput, prompts: PromptSink | None = None
    ) -> Generator[Scored, None, None]:
        self.log.append("execute")
        row_ids = self.rows.row_ids
        if prompts is not None:
            prompts(_prompts(row_ids), None)
        done = 0
        for size in self.groups:
            runs = []
            for probs in self.probs[done : done + size]:
                parts = np.array_split(np.asarray(probs), self.batches) if self.batches else []
                monitors = tuple(Monitor().update(p, parsed=np.ones(len(p), dtype=bool)) for p in parts)
                runs.append(ScoredRun(_result(row_ids, probs), monitors=monitors))
            done += size
            yield Scored(rows=self.rows, runs=tuple(runs))


def _adapters(tmp_path: Path) -> list[Path]:
    return [tmp_path / "a", tmp_path / "b"]


def test_a_group_of_runs_is_checked_whole_before_any_file_is_written(tmp_path: Path) -> None:
    rows = _rows()
    good, bad = list(np.linspace(0, 1, 12)), [0.5] * 11 + [float("nan")]
    with pytest.raises(InputError, match=r"1 of 12 rows got a non-finite probability with b .*pred\.b\.csv"):
        score_file(
            rows, "base", _adapters(tmp_path), out=tmp_path / "pred.csv", executor=Canned(rows, [good, bad], [2])
        )
    assert not list(tmp_path.iterdir())


def test_a_run_finished_alone_is_kept_when_a_later_one_fails(tmp_path: Path) -> None:
    rows = _rows()
    good, bad = list(np.linspace(0, 1, 12)), [0.5] * 11 + [float("inf")]
    with pytest.raises(InputError, match="non-finite probability with b"):
        score_file(
            rows, "base", _adapters(tmp_path), out=tmp_path / "pred.csv", executor=Canned(rows, [good, bad], [1, 1])
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.a.csv"]


def test_the_prompts_dump_appears_whole_only_when_every_run_is_finished(tmp_path: Path) -> None:
    """The executor writes the dump as it scores; it is moved into place after the last run, and a
    failed run leaves no dump and no temporary file behind."""
    rows = _rows()
    good, bad = list(np.linspace(0, 1, 12)), [0.5] * 11 + [float("inf")]
    dump = tmp_path / "prompts.jsonl"
    with pytest.raises(InputError, match="non-finite probability with b"):
        score_file(
            rows,
            "base",
            _adapters(tmp_path),
            out=tmp_path / "pred.csv",
            dump_prompts_to=dump,
            executor=Canned(rows, [good, bad], [1, 1]),
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.a.csv"]
    report = score_file(
        rows,
        "base",
        _adapters(tmp_path),
        out=tmp_path / "ok.csv",
        dump_prompts_to=dump,
        metrics_json=tmp_path / "m.json",
        executor=Canned(rows, [good, good], [1, 1]),
    )
    assert report.prompts_path == dump and report.metrics_path == tmp_path / "m.json"
    lines = [json.loads(line) for line in dump.read_text().splitlines()]
    assert [d["row_id"] for d in lines] == list(rows.row_ids)
    assert [d["prompt"] for d in lines] == [f"p{r}" for r in rows.row_ids]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_per_batch_monitors_are_merged_into_the_whole_runs_monitor(tmp_path: Path) -> None:
    rows = _rows()
    probs = [list(np.linspace(0.1, 0.9, 12)), [0.0] * 12]
    whole = score_file(rows, "base", _adapters(tmp_path), out=tmp_path / "w.csv", executor=Canned(rows, probs, [2]))
    parts = score_file(
        rows, "base", _adapters(tmp_path), out=tmp_path / "p.csv", executor=Canned(rows, probs, [2], batches=3)
    )
    for w, p in zip(whole.runs, parts.runs, strict=True):
        assert [a.to_dict() for a in p.alerts] == [a.to_dict() for a in w.alerts]
        assert p.degenerate == w.degenerate
        assert p.summary.keys() == w.summary.keys()
        for key, value in w.summary.items():  # Welford merge vs one pass: floats agree to a few ulps
            assert p.summary[key] == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value), key
    assert not parts.runs[0].degenerate and parts.runs[1].degenerate
    assert parts.any_degenerate and parts.runs[1].alerts[0].rule == "degenerate"


def test_data_warnings_are_said_once_before_scoring_when_read_up_front(tmp_path: Path) -> None:
    rows = _rows(empty_subreddit=True)
    assert len(rows.warnings) == 1 and "subreddit" in rows.warnings[0]
    probs = [list(np.linspace(0, 1, 12))]
    for up_front in (True, False):
        canned = Canned(rows, probs, [1], up_front=up_front)
        report = score_file(
            rows, "base", out=tmp_path / f"{up_front}.csv", executor=canned, log=canned.log.append, overwrite=True
        )
        warning = f"Warning: canned.csv: {rows.warnings[0]}"
        assert canned.log.count(warning) == 1
        assert (canned.log.index(warning) < canned.log.index("execute")) is up_front
        assert report.warnings == rows.warnings and report.rules == rows.rules


def test_options_and_keywords_build_the_same_plan(tmp_path: Path) -> None:
    rows = _rows()
    probs = [list(np.linspace(0, 1, 12))]
    options = ScoreOptions(out=tmp_path / "x.csv", metrics_json=tmp_path / "x.json")
    report = score_file(rows, "base", (), options, executor=Canned(rows, probs, [1]), out=tmp_path / "y.csv")
    assert report.runs[0].output == tmp_path / "y.csv" and report.metrics_path == tmp_path / "x.json"
    metrics = json.loads((tmp_path / "x.json").read_text())
    assert metrics["schema"] == "loraguard.score/1" and metrics["runs"][0]["output"] == str(tmp_path / "y.csv")
    with pytest.raises(OutputExistsError, match="already exists"):  # every output is checked before the executor starts
        score_file(rows, "base", (), options, executor=Canned(rows, probs, [1]), out=tmp_path / "y.csv")


def test_answer_words_the_model_ignores_raise_a_warning_alert(tmp_path: Path) -> None:
    import dataclasses

    from loraguard.findings import Severity
    from loraguard.scoring.answers import AnswerTokens
    from loraguard.scoring.pipeline import answer_mass_alert

    rows = _rows()
    answers = AnswerTokens("Yes", "No", (1,), (2,), ("Yes",), ("No",))
    base = dataclasses.replace(_result(rows.row_ids, np.linspace(0.1, 0.9, 12)), answers=answers)
    ignored = dataclasses.replace(base, answer_mass=np.full(12, 0.002))
    alert = answer_mass_alert(ignored)
    assert alert is not None and (alert.rule, alert.severity) == ("answer-mass", Severity.WARNING)
    assert "(Yes/No) get 0.20% of the probability mass" in alert.message and "--answers" in alert.message
    assert alert.evidence["mean_answer_mass"] == pytest.approx(0.002)
    assert answer_mass_alert(dataclasses.replace(base, answer_mass=np.full(12, 0.6))) is None
    assert answer_mass_alert(base) is None  # generate method: no mass measured
    assert answer_mass_alert(dataclasses.replace(base, answer_mass=np.full(12, np.nan))) is None  # unknown (Ray)
