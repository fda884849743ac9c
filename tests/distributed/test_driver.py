"""The two halves of `RayExecutor` without a cluster: the actor class called in-process on batches
read exactly as Ray Data reads them, and the driver's whole-file checks on what it returns."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loraguard.errors import DataFormatError

pytestmark = pytest.mark.slow
pa = pytest.importorskip("pyarrow")
pacsv = pytest.importorskip("pyarrow.csv")


def _config(probe_models: Any, data: Path, **over: Any) -> Any:
    from loraguard.distributed.io import read_columns
    from loraguard.distributed.worker import ScorerConfig

    kw: dict[str, Any] = {
        "base": str(probe_models.base),
        "adapters": (str(probe_models.healthy), str(probe_models.degenerate)),
        "names": ("healthy", "degenerate"),
        "columns": read_columns(data),
        "source": str(data),
        "template": "chat",
        "method": "logits",
        "answers": ("Yes", "No"),
        "batch_size": 8,
        "prefix_cache": True,
        "max_new_tokens": 10,
        "dtype": "float32",
        "device": "cpu",
        "threads": 1,
    }
    return ScorerConfig(**{**kw, **over})


@pytest.fixture(scope="module")
def scorer(probe_models: Any, rows_csv: Path) -> Any:
    from loraguard.distributed.worker import BatchScorer

    return BatchScorer(_config(probe_models, rows_csv))


def _table(path: Path) -> Any:
    from loraguard.distributed.io import csv_arrow_options

    return pacsv.read_csv(path, **csv_arrow_options(path))


def _batches(scorer: Any, path: Path, cuts: list[int]) -> list[Any]:
    """Score `path` in batches split at `cuts`, as the actor pool would, with `scorer`'s config."""
    import dataclasses

    from loraguard.distributed.io import read_columns

    scorer.config = dataclasses.replace(scorer.config, columns=read_columns(path), source=str(path))
    table = _table(path)
    edges = [0, *cuts, table.num_rows]
    return [scorer(table.slice(a, b - a)) for a, b in itertools.pairwise(edges)]


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _rows() -> list[dict[str, str]]:
    from loraguard.scoring.builtin_rows import builtin_rows

    return [dict(r) for r in builtin_rows()]


def test_the_actor_scores_a_batch_like_score_rows(scorer: Any, rows_csv: Path) -> None:
    from loraguard.scoring import load_rows, score_rows

    out = _batches(scorer, rows_csv, [])[0]
    rows = load_rows(rows_csv)
    assert out.column("row_id").to_pylist() == list(rows.row_ids)
    assert out.column("label").to_pylist() == [str(int(x)) for x in rows.labels]
    for i, name in enumerate(("healthy", "degenerate")):
        with scorer.loaded.activate(name):
            ref = score_rows(scorer.loaded.model, scorer.loaded.tokenizer, rows)
        np.testing.assert_array_equal(out.column(f"p{i}").to_numpy(), ref.probabilities)  # same batch: identical
    infos = [b for b in out.column("info").to_pylist() if b is not None]
    assert len(infos) == 1 and out.column("info").to_pylist()[0] is not None


def test_cells_are_decoded_like_load_rows(tmp_path: Path, scorer: Any) -> None:
    """`007` stays `007` (never a number), bad UTF-8 becomes U+FFFD and is reported, empty cells too."""
    from loraguard.distributed.collect import collect_batches
    from loraguard.scoring import load_rows

    rows = _rows()[:6]
    rows[0]["row_id"] = "007"
    rows[2]["subreddit"] = ""
    path = _write(tmp_path / "odd.csv", rows)
    raw = path.read_bytes().replace(b'007,"', b'007,"\xff', 1)  # an undecodable byte in row 1's body
    path.write_bytes(raw)
    expected = load_rows(path)
    collected = collect_batches(_batches(scorer, path, [3]), scorer.config)
    assert collected.row_ids == expected.row_ids and collected.row_ids[0] == "007"
    assert collected.warnings == expected.warnings
    assert any("not UTF-8" in w for w in collected.warnings) and any("empty subreddit" in w for w in collected.warnings)


def test_driver_merges_batches_into_the_single_process_result(scorer: Any, rows_csv: Path) -> None:
    from loraguard.distributed.collect import collect_batches
    from loraguard.monitor import monitor_values
    from loraguard.scoring import load_rows
    from loraguard.scoring.pipeline import merge_monitors

    def merged_monitor(infos: Any, run: int) -> Any:
        return merge_monitors(info.monitors[run] for info in infos)

    whole = collect_batches(_batches(scorer, rows_csv, []), scorer.config)
    parts = collect_batches(_batches(scorer, rows_csv, [5, 11, 19]), scorer.config)
    rows = load_rows(rows_csv)
    assert parts.row_ids == rows.row_ids and len(parts.infos) == 4
    np.testing.assert_array_equal(parts.labels, rows.labels)
    for run in (0, 1):
        np.testing.assert_allclose(parts.probabilities[run], whole.probabilities[run], atol=1e-5, rtol=0)
        merged = merged_monitor(parts.infos, run).summary()
        single = monitor_values(parts.probabilities[run], parsed=parts.parsed[run]).summary()
        assert merged.n == single.n == 24 and merged.histogram == single.histogram
        assert merged.fine_histogram == single.fine_histogram and merged.distinct == single.distinct
        assert merged.mean == pytest.approx(single.mean, abs=1e-12) and merged.std == pytest.approx(single.std)
    assert merged_monitor(parts.infos, 1).alerts()[0].rule == "degenerate"
    assert "degenerate" not in {a.rule for a in merged_monitor(parts.infos, 0).alerts()}


def test_duplicate_row_ids_in_different_batches_are_caught(tmp_path: Path, scorer: Any) -> None:
    from loraguard.distributed.collect import collect_batches

    rows = _rows()[:8]
    rows[6]["row_id"] = rows[1]["row_id"]
    path = _write(tmp_path / "dupes.csv", rows)
    batches = _batches(scorer, path, [4])  # rows 2 and 7 in different batches: each batch alone is fine
    with pytest.raises(DataFormatError, match=rf"duplicate row_id '{rows[1]['row_id']}' in row 2 and row 7"):
        collect_batches(batches, scorer.config)


def test_labels_missing_in_a_whole_batch_only_are_an_error(tmp_path: Path, scorer: Any) -> None:
    from loraguard.distributed.collect import collect_batches
    from loraguard.scoring import load_rows

    rows = _rows()[:8]
    for r in rows[4:]:
        r["rule_violation"] = ""
    path = _write(tmp_path / "half.csv", rows)
    with pytest.raises(DataFormatError, match="labels must be 0 or 1"):
        load_rows(path)
    batches = _batches(scorer, path, [4])  # the second batch has no label at all: valid on its own
    with pytest.raises(DataFormatError, match=r"rule_violation is empty in row 5 .*labels must be 0 or 1"):
        collect_batches(batches, scorer.config)
    for r in rows:
        r["rule_violation"] = ""
    path = _write(tmp_path / "none.csv", rows)
    collected = collect_batches(_batches(scorer, path, [4]), scorer.config)
    assert collected.labels is None and collected.warnings == load_rows(path).warnings


def test_a_bad_row_fails_its_batch_naming_the_file_and_row_id(tmp_path: Path, scorer: Any) -> None:
    rows = _rows()[:6]
    rows[4]["rule"] = " "
    path = _write(tmp_path / "bad.csv", rows)
    with pytest.raises(DataFormatError, match=rf"bad.csv .*column rule is empty .*row_id '{rows[4]['row_id']}'"):
        _batches(scorer, path, [3])
