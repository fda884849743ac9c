"""`score_file` with `RayExecutor` / `loraguard score --ray` on a local Ray instance against the local executor."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loraguard.errors import DistributedError

pytestmark = [pytest.mark.slow, pytest.mark.ray]
pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'loraguard[ray]'")


def read_csv_preds(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        assert next(reader) == ["row_id", "rule_violation"]
        rows = list(reader)
    return [r[0] for r in rows], np.array([float(r[1]) for r in rows])


def read_parquet_preds(path: Path) -> tuple[list[str], np.ndarray]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    assert table.column_names == ["row_id", "rule_violation"] and str(table.schema.field("row_id").type) == "string"
    return table.column("row_id").to_pylist(), table.column("rule_violation").to_numpy()


@pytest.fixture(scope="module")
def local(probe_models: Any, rows_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The single-process reference: `score_file` with the healthy and the degenerate adapter."""
    from loraguard.scoring import score_file

    out = tmp_path_factory.mktemp("local")
    report = score_file(
        rows_csv,
        probe_models.base,
        [probe_models.healthy, probe_models.degenerate],
        out=out / "pred.csv",
        metrics_json=out / "m.json",
        dump_prompts_to=out / "p.jsonl",
    )
    return report


def opts(**kw: Any) -> Any:
    from loraguard.distributed import RayScoreOptions

    return RayScoreOptions(**{"workers": 2, "batch_rows": 5, **kw})


def on_ray(options: Any, scorer_cls: Any = None) -> Any:
    from loraguard.distributed import RayExecutor

    return RayExecutor(options) if scorer_cls is None else RayExecutor(options, scorer_cls=scorer_cls)


def test_csv_in_parquet_out_equals_score_file(
    ray_local: Any, probe_models: Any, rows_csv: Path, local: Any, tmp_path: Path
) -> None:
    from loraguard.scoring import score_file

    dist = score_file(
        rows_csv,
        probe_models.base,
        [probe_models.healthy, probe_models.degenerate],
        out=tmp_path / "pred.parquet",
        executor=on_ray(opts()),
        metrics_json=tmp_path / "m.json",
        dump_prompts_to=tmp_path / "p.jsonl",
    )
    ray = dist.execution
    assert ray.batches == 5 and sum(ray.batches_per_worker.values()) == 5 and ray.session.reused
    for ref, run in zip(local.runs, dist.runs, strict=True):
        assert run.output.name == ref.output.name.replace(".csv", ".parquet")  # pred.<adapter>.parquet
        ids, probs = read_parquet_preds(run.output)
        ref_ids, ref_probs = read_csv_preds(ref.output)
        assert ids == ref_ids  # same rows, same order, each once
        np.testing.assert_allclose(probs, ref_probs, atol=1e-5, rtol=0)
        assert [a.rule for a in run.alerts] == [a.rule for a in ref.alerts]
        assert run.degenerate == ref.degenerate
        assert run.auc is not None and ref.auc is not None
        assert run.auc.auc == pytest.approx(ref.auc.auc, abs=1e-6)
        assert dict(run.result.stage_counts) == dict(ref.result.stage_counts)
        assert run.summary["distinct"] == ref.summary["distinct"]
    healthy, degenerate = dist.runs
    assert not healthy.degenerate and degenerate.degenerate and degenerate.alerts[0].rule == "degenerate"
    assert dist.any_degenerate
    dumped = (tmp_path / "p.jsonl").read_text().splitlines()
    assert dumped == Path(local.prompts_path).read_text().splitlines()  # the exact prompts and token ids
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert [r["rows"] for r in metrics["runs"]] == [24, 24] and metrics["schema"] == "loraguard.score/1"


def test_a_worker_that_dies_mid_run_is_retried(
    ray_local: Any, probe_models: Any, rows_csv: Path, local: Any, tmp_path: Path
) -> None:
    from ray_faults import kill_once

    from loraguard.scoring import score_file

    marker = tmp_path / "kill.marker"
    marker.write_text("2")  # the first actor to reach its 2nd batch exits the process, once
    dist = score_file(
        rows_csv,
        probe_models.base,
        [probe_models.healthy],
        out=tmp_path / "pred.csv",
        executor=on_ray(opts(batch_rows=4), kill_once(marker)),
    ).execution
    claimed = marker.with_suffix(".claimed")
    assert not marker.exists() and claimed.exists(), "no worker died: the fault was not injected"
    dropped = [r.strip("b'") for r in claimed.read_text().split()]
    ids, probs = read_csv_preds(tmp_path / "pred.csv")
    ref_ids, ref_probs = read_csv_preds(local.runs[0].output)
    assert ids == ref_ids and len(set(ids)) == 24 and set(dropped) <= set(ids)
    np.testing.assert_allclose(probs, ref_probs, atol=1e-5, rtol=0)
    assert dist.batches == 6 and len(dist.batches_per_worker) >= 2  # the restarted actor is a new process


def test_a_batch_that_keeps_killing_its_worker_fails_the_run(
    ray_local: Any, probe_models: Any, rows_csv: Path, tmp_path: Path
) -> None:
    from ray_faults import always_die

    from loraguard.scoring import load_rows, score_file

    poison = load_rows(rows_csv).row_ids[8]  # the first row of the third batch of 4
    deaths = tmp_path / "deaths.log"
    retried_once = r"Nothing was written\. A worker that dies is restarted and its batch retried 1 time"
    with pytest.raises(DistributedError, match=retried_once):
        score_file(
            rows_csv,
            probe_models.base,
            [probe_models.healthy],
            out=tmp_path / "pred.csv",
            executor=on_ray(opts(batch_rows=4, max_retries=1, workers=1), always_die({poison}, deaths)),
        )
    assert len(deaths.read_text().split()) == 2  # the first try and one retry, then it gave up
    assert not (tmp_path / "pred.csv").exists() and list(tmp_path.iterdir()) == [deaths]


def test_a_bad_row_is_a_data_error_not_a_cluster_error(
    ray_local: Any, run_cli: Any, probe_models: Any, rows_csv: Path, tmp_path: Path
) -> None:
    """A worker's `DataFormatError` reaches the user as itself (exit 2, the file and row_id named)."""
    from loraguard.scoring import load_rows

    rows = load_rows(rows_csv)
    bad = tmp_path / "bad.csv"
    with bad.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows.columns))
        writer.writeheader()
        writer.writerows({**r, "rule": "" if i == 13 else r["rule"]} for i, r in enumerate(rows))
    code, _, err = run_cli(
        [
            "score",
            str(bad),
            "--base",
            str(probe_models.base),
            "--adapter",
            str(probe_models.healthy),
            "--out",
            str(tmp_path / "p.csv"),
            "--ray",
            "--workers",
            "1",
            "--ray-batch-rows",
            "8",
            "--quiet",
        ]
    )
    assert code == 2
    assert (
        f"Error: {bad} (in the Ray batch of 8 rows starting at row_id '{rows.row_ids[8]}'; row and line numbers "
        f"count from that batch): column rule is empty in row 6 (row_id '{rows.row_ids[13]}')"
    ) in err
    assert not (tmp_path / "p.csv").exists()


def write_parquet_rows(rows_csv: Path, path: Path) -> Path:
    """The rows as Parquet with integer row_id and label columns (as pandas would write them)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from loraguard.scoring import load_rows

    rows = load_rows(rows_csv)
    table = pa.table({c: [r[c] for r in rows] for c in rows.columns})
    table = table.set_column(0, "row_id", pa.array([int(r) for r in rows.row_ids], pa.int64()))
    table = table.set_column(
        table.column_names.index("rule_violation"), "rule_violation", pa.array([int(x) for x in rows.labels], pa.int8())
    )
    pq.write_table(table, path)
    return path


def test_cli_parquet_in_fails_on_degenerate_and_never_overwrites(
    ray_local: Any, run_cli: Any, probe_models: Any, rows_csv: Path, local: Any, tmp_path: Path
) -> None:
    """Parquet with integer ids in, CSV out: the ids come back as the same text `load_rows` reads."""
    data = write_parquet_rows(rows_csv, tmp_path / "rows.parquet")
    out, html = tmp_path / "pred.csv", tmp_path / "r.html"
    args = [
        "score",
        str(data),
        "--base",
        str(probe_models.base),
        "--adapter",
        str(probe_models.healthy),
        "--adapter",
        str(probe_models.degenerate),
        "--out",
        str(out),
        "--ray",
        "--workers",
        "2",
        "--ray-batch-rows",
        "12",
        "--fail-on-degenerate",
        "--report",
        str(html),
        "--quiet",
    ]
    code, stdout, _ = run_cli(args)
    assert code == 1, stdout
    assert "ray: 2 worker(s) on existing" in stdout and "2 batches" in stdout
    assert "ALERT error degenerate" in stdout and "<svg" in html.read_text()
    for ref in local.runs:
        ids, probs = read_csv_preds(tmp_path / ref.output.name)
        ref_ids, ref_probs = read_csv_preds(ref.output)
        assert ids == ref_ids
        np.testing.assert_allclose(probs, ref_probs, atol=1e-5, rtol=0)
    written = tmp_path / local.runs[0].output.name
    before = written.read_bytes()
    code, _, err = run_cli(args)
    assert code == 2 and "already exists: pass --overwrite" in err and written.read_bytes() == before


@pytest.mark.shared
def test_real_jigsaw_rows_equal_score_file(
    ray_local: Any, probe_models: Any, jigsaw_train: Path, tmp_path: Path
) -> None:
    """The first 60 rows of the real train.csv (long posts, embedded newlines, quotes)."""
    from loraguard.scoring import load_rows, score_file

    rows = load_rows(jigsaw_train)
    subset = tmp_path / "train60.csv"
    with subset.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows.columns))
        writer.writeheader()
        writer.writerows(rows.rows[:60])
    assert any("\n" in r["body"] for r in rows.rows[:60]), "the subset should hold multi-line cells"
    ref = score_file(subset, probe_models.base, [probe_models.healthy], out=tmp_path / "local.csv")
    dist = score_file(
        subset,
        probe_models.base,
        [probe_models.healthy],
        out=tmp_path / "ray.csv",
        executor=on_ray(opts(batch_rows=32)),
    )
    ids, probs = read_csv_preds(tmp_path / "ray.csv")
    ref_ids, ref_probs = read_csv_preds(tmp_path / "local.csv")
    assert ids == ref_ids == list(rows.row_ids[:60])
    np.testing.assert_allclose(probs, ref_probs, atol=1e-5, rtol=0)
    assert dist.runs[0].auc.mean_rule_auc == pytest.approx(ref.runs[0].auc.mean_rule_auc, abs=1e-6)
