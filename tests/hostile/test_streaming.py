"""Big inputs are streamed: a Jigsaw CSV is read record by record (never held whole), `probe --data` reads
only the rows it samples, `score --time-budget` covers reading, and `monitor` watches a predictions file of
any size in bounded memory. Files of ~50-60 MB are generated in tmp_path; the bounds separate "what the
rows need" from the several copies of the whole file the readers used to make."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hostile_inputs import MB, bounded

from loraguard.errors import DataFormatError, TimeBudgetExceededError

BODY = "lorem ipsum dolor sit amet, consectetur adipiscing elit, é ü 字 " * 12  # ~770 characters, not ASCII only


def _jigsaw(path: Path, megabytes: float, *, labels: bool = True) -> int:
    """A Jigsaw-format CSV of about `megabytes` MB; returns its number of rows."""
    columns = ["row_id", "body", "rule", "subreddit", "positive_example_1", "positive_example_2"]
    columns += ["negative_example_1", "negative_example_2"] + (["rule_violation"] if labels else [])
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        while f.tell() < megabytes * MB:
            block = [
                [str(rows + i), f"{BODY}{i}", "No spam", "r/x", "buy", "sell", "hi", "yo"] + (["1"] if labels else [])
                for i in range(1000)
            ]
            writer.writerows(block)
            rows += len(block)
    return rows


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("big") / "train.csv"
    return path, _jigsaw(path, 60)


def test_a_big_csv_is_read_without_copies_of_the_whole_file(big_csv: tuple[Path, int]) -> None:
    from loraguard.scoring.data import load_rows

    path, n = big_csv
    size = path.stat().st_size
    text_bytes = (len(BODY) + 40) * n  # the rows' own text, roughly
    with bounded(seconds=10, megabytes=3 * size / MB) as seen:
        rows = load_rows(path)
    assert len(rows) == n and rows.labels is not None and rows.rows[-1]["row_id"] == str(n - 1)
    # the rows themselves: their text (compact str objects) plus a dict per row; the old reader held the
    # raw bytes, the decoded text, a UCS-4 StringIO copy and every record list besides (> 6x the file)
    assert seen.peak_bytes < 2.2 * size + 1.5 * text_bytes, f"{seen.peak_bytes / MB:.0f} MB for {size / MB:.0f} MB"


def test_probe_data_reads_only_the_rows_it_samples(big_csv: tuple[Path, int]) -> None:
    from loraguard.probe.run import sample_rows

    path, _ = big_csv
    with bounded(seconds=0.5, megabytes=2) as seen:
        data, source = sample_rows(path, samples=16)
    assert len(data) == 16 and source == str(path) and data.rows[0]["row_id"] == "0"
    assert seen.seconds < 2.0  # a 60 MB file: reading it whole takes seconds


def test_the_time_budget_covers_reading(big_csv: tuple[Path, int]) -> None:
    from loraguard.scoring.data import load_rows

    path, n = big_csv
    ticks = iter(range(10**9))
    with pytest.raises(TimeBudgetExceededError, match=r"ran out while reading .*train.csv: \d+ rows read") as info:
        load_rows(path, time_budget_s=5, clock=lambda: float(next(ticks)))  # one second per look at the clock
    read = int(str(info.value).split(": ")[1].split()[0])
    assert 0 < read < n  # it stopped reading, long before the end


def test_score_time_budget_stops_while_reading(big_csv: tuple[Path, int], tmp_path: Path) -> None:
    path, _ = big_csv
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "config.json").write_text("{}")
    cmd = [sys.executable, "-m", "loraguard", "score", str(path), "--base", str(tmp_path / "base")]
    cmd += ["--out", str(tmp_path / "p.csv"), "--time-budget", "0.001s"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "ran out while reading" in proc.stderr and "nothing was scored" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "p.csv").exists()


def _predictions(path: Path, megabytes: float, *, duplicate_at: int | None = None) -> int:
    rng = np.random.default_rng(0)
    rows = 0
    with path.open("w", encoding="utf-8") as f:
        f.write("row_id,rule_violation\n")
        while f.tell() < megabytes * MB:
            values = rng.random(20_000)
            ids = range(rows, rows + values.size)
            pairs = zip(ids, values.tolist(), strict=True)
            f.write("".join(f"comment-{i:012d}-of-a-long-thread,{v!r}\n" for i, v in pairs))
            rows += values.size
        if duplicate_at is not None:
            f.write(f"comment-{duplicate_at:012d}-of-a-long-thread,0.5\n")
            rows += 1
    return rows


def test_monitor_streams_a_big_predictions_file_in_bounded_memory(tmp_path: Path) -> None:
    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    _predictions(small, 0.01)
    n = _predictions(big, 50)
    run = [sys.executable, "-m", "loraguard", "monitor", "--format", "json"]
    code, out, baseline = _peak_rss_subprocess([*run, str(small)])
    assert code == 0, out[-2000:]
    code, out, peak = _peak_rss_subprocess([*run, str(big)])
    assert code == 0, out[-2000:]
    assert json.loads(out)["n"] == n
    # the reader keeps one chunk and 8 bytes per row; the old one held the file ~10 times over (> 500 MB here)
    assert peak - baseline < 80, f"{peak - baseline:.0f} MB above a tiny file's {baseline:.0f} MB"


def _peak_rss_subprocess(cmd: list[str]) -> tuple[int, str, float]:
    """Run `cmd`; (exit code, output, its own peak RSS in MB) from os.wait4's resource usage."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    out = proc.stdout.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, out, usage.ru_maxrss / 1024


def test_a_duplicate_row_id_across_chunks_is_found_with_its_lines(tmp_path: Path) -> None:
    from loraguard.monitor.predictions import iter_predictions

    path = tmp_path / "dup.csv"
    n = _predictions(path, 0.2, duplicate_at=7)
    chunks = iter_predictions(path, chunk_rows=1000)
    with pytest.raises(
        DataFormatError, match=rf"line {n + 1}: duplicate row_id '.*-000000000007-.*' \(first on line 9\)"
    ):
        for _ in chunks:
            pass
    clean = tmp_path / "clean.csv"
    m = _predictions(clean, 0.2)
    assert sum(len(c) for c in iter_predictions(clean, chunk_rows=1000)) == m


def test_an_absurd_row_id_is_refused_not_multiplied_into_every_row(tmp_path: Path) -> None:
    from loraguard.monitor.predictions import read_predictions

    path = tmp_path / "long.csv"
    path.write_text(
        "row_id,rule_violation\n" + "a" * 2_000_000 + ",0.5\n" + "".join(f"{i},0.1\n" for i in range(10**5))
    )
    with bounded(seconds=2, megabytes=60), pytest.raises(DataFormatError, match="a row_id of 2,000,000 characters"):
        read_predictions(path)
