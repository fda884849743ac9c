"""Scoring a file a chunk at a time: `index_rows` checks exactly as `load_rows` does while keeping no text,
`iter_row_chunks` reads the rows again and refuses a file that changed, and scores, prompts dumps,
progress and the context check are the same whatever the chunk size."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scoring_helpers import mixed_rows, write_csv

from loraguard.errors import DataFormatError, InputError, TimeBudgetExceededError
from loraguard.scoring import score_file
from loraguard.scoring.builtin_rows import COLUMNS, builtin_rows
from loraguard.scoring.data import RowIndex, index_rows, iter_row_chunks, load_rows, rows_from_records
from loraguard.scoring.local import LocalExecutor
from loraguard.scoring.progress import ChunkedProgress, TimeBudget

Case = Callable[[Path], Path]


def _rows(tmp: Path, edit: Callable[[list[dict[str, str]]], None], columns: tuple[str, ...] = COLUMNS) -> Path:
    rows = builtin_rows()
    edit(rows)
    return write_csv(tmp / "d.csv", rows, columns)


def _set(i: int, col: str, value: str) -> Callable[[list[dict[str, str]]], None]:
    def edit(rows: list[dict[str, str]]) -> None:
        rows[i][col] = value

    return edit


def _all_labels_empty(rows: list[dict[str, str]]) -> None:
    for r in rows:
        r["rule_violation"] = ""


def _non_utf8(tmp: Path) -> Path:
    path = write_csv(tmp / "d.csv", builtin_rows()[:4])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"Get 1000 free coins", b"Get 1000 \xff coins"))
    return path


CASES: dict[str, Case] = {
    "healthy": lambda t: _rows(t, lambda rows: None),
    "empty cells": lambda t: _rows(t, _set(0, "body", "")),
    "no labels": lambda t: _rows(t, lambda rows: None, COLUMNS[:-1]),
    "labels all empty": lambda t: _rows(t, _all_labels_empty),
    "non-UTF-8": _non_utf8,
    "bad label": lambda t: _rows(t, _set(4, "rule_violation", "0.7")),
    "one empty label": lambda t: _rows(t, _set(1, "rule_violation", "")),
    "duplicate row_id": lambda t: _rows(t, _set(7, "row_id", "9002")),
    "empty rule": lambda t: _rows(t, _set(3, "rule", " ")),
    "missing column": lambda t: _rows(t, lambda rows: None, tuple(c for c in COLUMNS if c != "rule")),
    "header only": lambda t: write_csv(t / "d.csv", []),
}


@pytest.mark.parametrize("case", CASES)
def test_the_index_checks_exactly_as_load_rows_does(tmp_path: Path, case: str) -> None:
    path = CASES[case](tmp_path)
    try:
        whole = load_rows(path)
    except DataFormatError as exc:
        with pytest.raises(DataFormatError) as info:
            index_rows(path)
        assert str(info.value) == str(exc)
        return
    index = index_rows(path)
    assert isinstance(index, RowIndex) and len(index) == len(whole)
    assert index.row_ids == whole.row_ids and index.rules == whole.rules and index.columns == whole.columns
    assert index.warnings == whole.warnings and index.replaced_rows == whole.replaced_rows
    if whole.labels is None:
        assert index.labels is None
    else:
        assert index.labels is not None and index.labels.tolist() == whole.labels.tolist()
    for size in (1, 5, 1000):
        chunks = list(iter_row_chunks(path, index, size))
        assert [len(c) for c in chunks][:-1] == [size] * (len(chunks) - 1)
        assert [dict(r) for c in chunks for r in c.rows] == [dict(r) for r in whole.rows]


def test_equal_rules_share_one_string(tmp_path: Path) -> None:
    index = index_rows(CASES["healthy"](tmp_path))
    assert len({id(r) for r in index.rules}) == len(set(index.rules)) == 2


@pytest.mark.parametrize(
    "change",
    ["append a row", "rewrite a row_id, same size", "same size and time", "truncate", "touch only"],
)
def test_a_file_that_changed_after_its_check_is_refused(tmp_path: Path, change: str) -> None:
    path = write_csv(tmp_path / "d.csv", builtin_rows())
    index = index_rows(path)
    raw = path.read_bytes()
    if change == "append a row":
        path.write_bytes(raw + raw.splitlines(keepends=True)[1].replace(b"9000", b"7777", 1))
    elif change == "rewrite a row_id, same size":
        path.write_bytes(raw.replace(b"9013", b"9913", 1))
    elif change == "same size and time":  # only the row_ids tell
        path.write_bytes(raw.replace(b"9013", b"9913", 1))
        os.utime(path, ns=(index.stat[1], index.stat[1]))
        assert (path.stat().st_size, path.stat().st_mtime_ns) == index.stat
    elif change == "truncate":
        path.write_bytes(b"".join(raw.splitlines(keepends=True)[:5]))
    else:
        os.utime(path, ns=(index.stat[1] + 10**9, index.stat[1] + 10**9))
    with pytest.raises(DataFormatError, match=r"d\.csv changed after it was checked"):
        for _ in iter_row_chunks(path, index, 5):
            pass


def test_a_change_while_chunks_are_read_is_refused(tmp_path: Path) -> None:
    """The stat is looked at again at the end, and each chunk's row_ids against the index."""
    path = write_csv(tmp_path / "d.csv", builtin_rows())
    index = index_rows(path)
    chunks = iter_row_chunks(path, index, 5)
    next(chunks)
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b"9020", b"9920", 1))  # a later row, same size
    with pytest.raises(DataFormatError, match="changed after it was checked"):
        for _ in chunks:
            pass


def test_chunked_progress_is_one_run_whose_units_are_projected_then_revised() -> None:
    seen: list[tuple[str, int, int]] = []

    class Sink:
        def start(self, total_rows: int, total_units: int) -> None:
            seen.append(("start", total_rows, total_units))

        def advance(self, rows: int, units: int) -> None:
            seen.append(("advance", rows, units))

        def revise(self, total_units: int) -> None:
            seen.append(("revise", 0, total_units))

    run = ChunkedProgress(Sink(), total_rows=30)
    run.start(10, 100)  # 10 tokens a row so far: 300 projected
    run.advance(10, 100)
    run.start(10, 300)  # 20 a row over the 20 rows seen: 600
    run.advance(10, 300)
    run.start(10, 200)
    assert seen == [
        ("start", 30, 300),
        ("advance", 10, 100),
        ("revise", 0, 600),
        ("advance", 10, 300),
        ("revise", 0, 600),
    ]


def test_the_time_budget_projects_from_the_revised_units() -> None:
    now = [0.0]
    budget = TimeBudget(100, clock=lambda: now[0])
    run = ChunkedProgress(budget, total_rows=300)
    run.start(100, 1_000)  # projected 3,000 units
    for _ in range(2):
        now[0] += 10
        run.advance(50, 500)  # 10 s per 500 units: 60 s in all, within 100 s
    run.start(100, 9_000)  # the second chunk is 9x longer: 15,000 units projected, 300 s
    now[0] += 10
    with pytest.raises(TimeBudgetExceededError, match="time budget 1m40s would be exceeded"):
        run.advance(10, 500)


@pytest.fixture(scope="module")
def mixed_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(tmp_path_factory.mktemp("mixed") / "mixed.csv", mixed_rows())


@pytest.mark.parametrize("method", ["logits", "generate"])
def test_scores_and_the_prompts_dump_do_not_depend_on_the_chunk_size(
    tiny_base: Path, mixed_csv: Path, tmp_path: Path, method: str
) -> None:
    reports = {}
    for size in (3, 10_000):
        reports[size] = score_file(
            mixed_csv,
            tiny_base,
            out=tmp_path / f"p{size}.csv",
            dump_prompts_to=tmp_path / f"d{size}.jsonl",
            method=method,
            batch_size=4,
            show_progress=False,
            executor=LocalExecutor(chunk_rows=size),
        )
    small, whole = (reports[s].runs[0].result for s in (3, 10_000))
    assert small.row_ids == whole.row_ids == load_rows(mixed_csv).row_ids
    np.testing.assert_allclose(small.probabilities, whole.probabilities, atol=1e-5, rtol=0)
    assert small.prompts is None and whole.prompts is None  # not kept: they went to the dump
    assert dict(small.stage_counts) == dict(whole.stage_counts) and sum(small.stage_counts.values()) == len(
        small.row_ids
    )
    assert small.timing.prompt_tokens == whole.timing.prompt_tokens
    assert (tmp_path / "d3.jsonl").read_text() == (tmp_path / "d10000.jsonl").read_text()
    lines = [json.loads(line) for line in (tmp_path / "d3.jsonl").read_text().splitlines()]
    assert [d["row_id"] for d in lines] == list(whole.row_ids)
    if method == "logits":
        assert small.answer_mass is not None and whole.answer_mass is not None
        np.testing.assert_allclose(small.answer_mass, whole.answer_mass, atol=1e-5, rtol=1e-3)
        assert lines[0]["positive_token_ids"] and small.timing.prefix_tokens_skipped > 0
    else:
        assert small.texts == whole.texts and small.texts is not None and len(small.texts) == len(whole.row_ids)
    auc_small, auc_whole = reports[3].runs[0].auc, reports[10_000].runs[0].auc
    assert auc_small is not None and auc_whole is not None and auc_small.to_dict() == auc_whole.to_dict()


def test_an_in_memory_rowset_is_scored_in_chunks_too(tiny_base: Path, tmp_path: Path) -> None:
    rows = rows_from_records(mixed_rows())
    small = score_file(rows, tiny_base, out=tmp_path / "a.csv", show_progress=False, executor=LocalExecutor(4))
    whole = score_file(rows, tiny_base, out=tmp_path / "b.csv", show_progress=False, executor=LocalExecutor(10**6))
    np.testing.assert_allclose(small.runs[0].result.probabilities, whole.runs[0].result.probabilities, atol=1e-5)
    assert (tmp_path / "a.csv").read_text().splitlines()[0] == "row_id,rule_violation"


def test_a_row_too_long_in_the_last_chunk_is_refused_before_anything_is_scored(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import loraguard.scoring.api as api

    rows = builtin_rows()
    rows[-1]["body"] = "spam " * 5000
    path = write_csv(tmp_path / "d.csv", rows)
    scored: list[Any] = []
    real = api.score_chunks
    monkeypatch.setattr(api, "score_chunks", lambda *a, **k: scored.append(1) or real(*a, **k))
    with pytest.raises(InputError, match=r"row_id '9023': the prompt has \d+ tokens, more than the model's context"):
        score_file(path, tiny_base, out=tmp_path / "p.csv", show_progress=False, executor=LocalExecutor(chunk_rows=4))
    assert scored == [] and sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


def test_the_context_check_tokenizes_only_prompts_that_might_not_fit(loaded: Any) -> None:
    from loraguard.scoring.api import check_context_fits

    rows = rows_from_records(builtin_rows())
    calls: list[int] = []

    class Counting:
        def __init__(self, tok: Any) -> None:
            self.tok = tok

        def __call__(self, texts: list[str], **kw: Any) -> Any:
            calls.append(len(texts))
            return self.tok(texts, **kw)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.tok, name)

    check_context_fits(loaded.model, Counting(loaded.tokenizer), rows.chunks(5))
    assert calls == []  # every prompt is far shorter in bytes than the 4,096-token window
    long = rows_from_records([*builtin_rows()[:3], {**builtin_rows()[3], "body": "ok " * 1300}])
    check_context_fits(loaded.model, Counting(loaded.tokenizer), long.chunks(2))
    assert calls == [1]  # ~5,000 bytes might not fit: that prompt alone is tokenized (and fits)


BODY = "lorem ipsum dolor sit amet, consectetur adipiscing elit, é ü 字 " * 12


def _big_csv(path: Path, rows: int) -> Path:
    """Rows of ~800 characters whose examples are shared (so the tiny model scores them fast)."""
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(",".join(COLUMNS) + "\n")
        for i in range(rows):
            f.write(f'{i},"{BODY}{i}",No spam {i % 3},r/x,buy,sell,hi,yo,{i % 2}\n')
    return path


@pytest.mark.slow
def test_score_memory_does_not_grow_with_the_file(tiny_base: Path, tmp_path: Path) -> None:
    """8 MB of rows (10,000) peak within 150 MB of 200 rows; holding every row's prompt and token ids,
    as `score` did before it read in chunks, took ~1.2 GB more here."""
    import subprocess
    import sys

    def peak(rows: int) -> float:
        data = _big_csv(tmp_path / f"d{rows}.csv", rows)
        cmd = [sys.executable, "-m", "loraguard", "score", str(data), "--base", str(tiny_base), "-q"]
        cmd += ["--out", str(tmp_path / f"p{rows}.csv"), "--batch-size", "32", "--format", "json"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert proc.stdout is not None
        out = proc.stdout.read().decode("utf-8", "replace")
        _, status, usage = os.wait4(proc.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, out[-2000:]
        assert json.loads(out)["runs"][0]["rows"] == rows
        return usage.ru_maxrss / 1024

    small, big = peak(200), peak(10_000)
    assert (tmp_path / "d10000.csv").stat().st_size > 8 * 2**20
    assert big - small < 150, f"{big - small:.0f} MB above 200 rows' {small:.0f} MB"


def test_a_pipe_is_read_once_and_scored_like_its_file(tiny_base: Path, mixed_csv: Path, tmp_path: Path) -> None:
    """`score <(zcat train.csv.gz)`: a FIFO cannot be read twice (a second open would wait forever for a
    writer), so its rows are held, as before chunks; `iter_row_chunks` refuses one outright."""
    import threading

    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)
    threading.Thread(target=lambda: fifo.write_bytes(mixed_csv.read_bytes()), daemon=True).start()
    done: list[Any] = []

    def run() -> None:
        done.append(score_file(fifo, tiny_base, out=tmp_path / "a.csv", show_progress=False, executor=LocalExecutor(3)))

    scorer = threading.Thread(target=run, daemon=True)
    scorer.start()
    scorer.join(timeout=120)
    assert done, "scoring a pipe did not finish (blocked on a second read?)"
    whole = score_file(mixed_csv, tiny_base, out=tmp_path / "b.csv", show_progress=False)
    assert done[0].runs[0].result.row_ids == whole.runs[0].result.row_ids
    np.testing.assert_allclose(done[0].runs[0].result.probabilities, whole.runs[0].result.probabilities, atol=1e-5)
    with pytest.raises(DataFormatError, match=r"rows\.fifo is not a regular file, so it cannot be read again"):
        next(iter_row_chunks(fifo, index_rows(mixed_csv), 3))
