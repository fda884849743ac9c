"""Reading, validating, aligning and writing prediction and label CSVs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loraguard.errors import DataFormatError, OutputExistsError
from loraguard.monitor.predictions import (
    Predictions,
    align,
    read_column,
    read_labels,
    read_predictions,
    write_predictions,
)


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_reads_ids_and_values_and_strips_bom(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.csv", "\ufeffrow_id,rule_violation\n10,0.25\n11,1\n12,0\n")
    preds = read_predictions(path)
    assert preds.row_ids.tolist() == ["10", "11", "12"]
    assert preds.values.dtype == np.float64
    assert preds.values.tolist() == [0.25, 1.0, 0.0]
    assert preds.parsed is None
    assert preds.source == str(path)


def test_optional_parsed_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.csv", "row_id,rule_violation,parsed\na,0.1,1\nb,0.0,false\nc,0.9,True\n")
    assert read_predictions(path).parsed.tolist() == [True, False, True]


def test_quoted_multiline_fields_keep_line_numbers(tmp_path: Path) -> None:
    text = 'row_id,body,rule_violation\n1,"two\nlines",0.5\n2,"x",1.5\n'
    with pytest.raises(DataFormatError, match=r"line 4: rule_violation = 1.5 is outside \[0, 1\]"):
        read_predictions(_write(tmp_path / "p.csv", text))


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", r"is empty"),
        ("   \n", r"is empty"),
        ("row_id,rule_violation\n", r"has a header but no rows"),
        ("id,score\n1,0.5\n", r"has no 'row_id', 'rule_violation' column \(columns: id, score\)"),
        ("row_id,rule_violation\n1,0.5\n2,nan\n", r"line 3: rule_violation = nan is NaN"),
        ("row_id,rule_violation\n1,-0.1\n", r"line 2: rule_violation = -0.1 is outside \[0, 1\]"),
        ("row_id,rule_violation\n1,inf\n", r"line 2: rule_violation = inf is outside"),
        ("row_id,rule_violation\n1,yes\n", r"line 2: rule_violation = 'yes' is not a number"),
        ("row_id,rule_violation\n1,0.1\n2,0.2\n1,0.3\n", r"line 4: duplicate row_id '1' \(first on line 2\)"),
        ("row_id,rule_violation\n1,0.1,9\n", r"line 2: 3 fields but the header has 2"),
        ("row_id,rule_violation\n ,0.1\n", r"line 2: empty row_id"),
        ("row_id,rule_violation,parsed\n1,0.1,maybe\n", r"line 2: parsed = 'maybe' is not a boolean"),
    ],
)
def test_bad_files_name_the_file_and_line(tmp_path: Path, text: str, pattern: str) -> None:
    path = _write(tmp_path / "bad.csv", text)
    with pytest.raises(DataFormatError, match=pattern) as info:
        read_predictions(path)
    assert str(path) in str(info.value)


def test_non_utf8_names_line_and_byte(tmp_path: Path) -> None:
    path = _write(tmp_path / "latin.csv", "row_id,rule_violation\n1,0.5\nd\xe9j\xe0,0.1\n", encoding="latin-1")
    with pytest.raises(DataFormatError, match=r"latin.csv line 3 is not UTF-8 \(byte 0xe9"):
        read_predictions(path)


def test_missing_file_is_a_data_format_error(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"cannot read .*nope.csv"):
        read_predictions(tmp_path / "nope.csv")


def test_predictions_reject_duplicates_and_out_of_range_values() -> None:
    with pytest.raises(DataFormatError, match=r"duplicate row_id\(s\) 'a'"):
        Predictions(np.array(["a", "b", "a"]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(DataFormatError, match=r"row_id 'b' has value nan"):
        Predictions(np.array(["a", "b"]), np.array([0.1, np.nan]))
    preds = Predictions(np.array(["a"]), np.array([0.5]))
    with pytest.raises(ValueError, match="read-only"):
        preds.values[0] = 0.9


def test_align_reorders_to_the_first_file() -> None:
    a = Predictions(np.array(["1", "2", "3"]), np.array([0.1, 0.2, 0.3]), source="a.csv")
    b = Predictions(np.array(["3", "1", "2"]), np.array([0.33, 0.11, 0.22]), source="b.csv")
    _, b2 = align(a, b)
    assert b2.row_ids.tolist() == ["1", "2", "3"]
    assert b2.values.tolist() == [0.11, 0.22, 0.33]


def test_align_names_missing_and_extra_ids() -> None:
    a = Predictions(np.array(["1", "2", "3"]), np.array([0.1, 0.2, 0.3]), source="a.csv")
    b = Predictions(np.array(["1", "2", "9"]), np.array([0.1, 0.2, 0.3]), source="b.csv")
    with pytest.raises(
        DataFormatError,
        match=r"1 row_id\(s\) of a.csv are not in b.csv \('3'\).*"
        r"1 row_id\(s\) of b.csv are not in a.csv \('9'\)",
    ):
        align(a, b)


def test_write_is_atomic_and_refuses_to_overwrite(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    preds = Predictions(np.array([f"r{i}" for i in range(50)]), rng.random(50))
    out = write_predictions(preds, tmp_path / "out.csv")
    back = read_predictions(out)
    assert back.row_ids.tolist() == preds.row_ids.tolist()
    assert np.array_equal(back.values, preds.values)  # repr round-trips floats exactly
    out.write_text("keep me")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_predictions(preds, out)
    assert out.read_text() == "keep me"
    write_predictions(preds, out, overwrite=True)
    assert np.array_equal(read_predictions(out).values, preds.values)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no temp file left


def test_labels_must_be_binary_and_align_with_extra_rows(tmp_path: Path) -> None:
    path = _write(tmp_path / "l.csv", "row_id,rule,rule_violation\n1,A,1\n2,B,0\n3,A,0\n")
    labels = read_labels(path)
    assert labels.groups.tolist() == ["A", "B", "A"]
    preds_ids = np.array(["3", "1"])
    aligned = labels.aligned_to(preds_ids)
    assert aligned.y.tolist() == [0, 1]
    assert aligned.groups.tolist() == ["A", "A"]
    with pytest.raises(DataFormatError, match=r"'7'"):
        labels.aligned_to(np.array(["1", "7"]))
    bad = _write(tmp_path / "bad.csv", "row_id,rule_violation\n1,1\n2,0.7\n")
    with pytest.raises(DataFormatError, match=r"bad.csv line 3: label rule_violation = '0.7' is not 0 or 1"):
        read_labels(bad)


def test_read_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.csv", "row_id,rule\n1,A\n2,B\n")
    ids, values = read_column(path, "rule")
    assert ids.tolist() == ["1", "2"] and values.tolist() == ["A", "B"]
    with pytest.raises(DataFormatError, match=r"no 'subreddit' column"):
        read_column(path, "subreddit")


@pytest.mark.shared
def test_reads_the_real_jigsaw_train_csv(jigsaw_train: Path) -> None:
    labels = read_labels(jigsaw_train)
    assert labels.y.size == 2029
    assert set(labels.y.tolist()) == {0, 1}
    assert len(np.unique(labels.groups)) == 2
    preds = read_predictions(jigsaw_train)  # multi-line quoted bodies; 0/1 labels are valid probabilities
    assert np.array_equal(preds.values, labels.y.astype(float))
