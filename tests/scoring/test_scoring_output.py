"""Atomic writes: never overwrite without permission, never leave a temp file."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import IO

import pytest

from loraguard.errors import InputError, OutputExistsError
from loraguard.scoring.answers import AnswerTokens
from loraguard.scoring.api import EncodedPrompts
from loraguard.scoring.output import (
    PromptDump,
    atomic_write,
    check_outputs,
    prediction_paths,
    write_json,
    write_predictions,
)


def test_write_predictions(tmp_path: Path) -> None:
    out = write_predictions(tmp_path / "p.csv", ["1", "2"], [0.25, 1.0000001])
    rows = list(csv.reader(out.open()))
    assert rows == [["row_id", "rule_violation"], ["1", "0.25"], ["2", "1.0"]]
    assert [p.name for p in tmp_path.iterdir()] == ["p.csv"]


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("precious\n")
    with pytest.raises(OutputExistsError, match="already exists: pass --overwrite"):
        write_predictions(path, ["1"], [0.5])
    assert path.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]
    write_predictions(path, ["1"], [0.5], overwrite=True)
    assert path.read_text() == "row_id,rule_violation\n1,0.5\n"


def test_failure_midway_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("old\n")

    def boom(handle: IO[str]) -> None:
        handle.write("half a file")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(path, boom, overwrite=True)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["p.csv"]


def test_nan_probability_is_refused_and_nothing_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not finite"):
        write_predictions(tmp_path / "p.csv", ["1", "2"], [0.5, float("nan")])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_write_predictions_as_parquet_by_suffix(tmp_path: Path, suffix: str) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = write_predictions(tmp_path / f"p{suffix}", ["007", "2"], [0.25, 1.0000001])
    table = pq.read_table(out)
    assert table.column_names == ["row_id", "rule_violation"] and str(table.schema.field("row_id").type) == "string"
    assert table.column("row_id").to_pylist() == ["007", "2"] and table.column("rule_violation").to_pylist() == [
        0.25,
        1.0,
    ]
    with pytest.raises(ValueError, match="not finite"):  # checked before either format is written
        write_predictions(tmp_path / f"q{suffix}", ["1", "2"], [0.5, float("nan")])
    with pytest.raises(OutputExistsError):
        write_predictions(out, ["1"], [0.5])
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_prediction_paths_per_adapter() -> None:
    assert prediction_paths("out/pred.csv", [None]) == [Path("out/pred.csv")]
    assert prediction_paths("out/pred.csv", ["a"]) == [Path("out/pred.csv")]
    assert prediction_paths("out/pred.csv", ["fold0", "fold1"]) == [
        Path("out/pred.fold0.csv"),
        Path("out/pred.fold1.csv"),
    ]


def test_check_outputs(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("")
    with pytest.raises(OutputExistsError):
        check_outputs([tmp_path / "a.csv", tmp_path / "x.csv"], overwrite=False)
    check_outputs([tmp_path / "a.csv", tmp_path / "x.csv"], overwrite=True)
    with pytest.raises(InputError, match="does not exist"):
        check_outputs([tmp_path / "nope" / "a.csv"], overwrite=False)
    with pytest.raises(InputError, match="given twice"):
        check_outputs([tmp_path / "a.csv", tmp_path / "." / "a.csv"], overwrite=False)


def test_json_and_jsonl(tmp_path: Path) -> None:
    write_json(tmp_path / "m.json", {"auc": float("nan"), "x": [1.5]})
    assert json.loads((tmp_path / "m.json").read_text()) == {"auc": None, "x": [1.5]}
    answers = AnswerTokens("Yes", "No", (7,), (8,), ("Yes",), ("No",))
    with PromptDump.open(tmp_path / "p.jsonl") as dump:
        dump(EncodedPrompts(("1",), ("hi",), ((5, 6),), "chat", False), answers)
        assert not (tmp_path / "p.jsonl").exists()  # only once the block ends
    line = json.loads((tmp_path / "p.jsonl").read_text())
    assert line["input_ids"] == [5, 6] and line["positive_token_ids"] == [7] and line["negative_token_ids"] == [8]
    assert line["row_id"] == "1" and line["prompt"] == "hi" and dump.rows == 1
