"""CSV reading and validation: errors name the column and the row."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from scoring_helpers import write_csv

from loraguard.errors import DataFormatError
from loraguard.scoring.builtin_rows import COLUMNS, builtin_rows
from loraguard.scoring.data import load_rows, rows_from_records


def test_builtin_rows_load_with_labels(tmp_path: Path) -> None:
    rs = load_rows(write_csv(tmp_path / "d.csv", builtin_rows()))
    assert len(rs) == 24
    assert rs.row_ids[0] == "9000"
    assert rs.labels is not None and rs.labels.sum() == 12
    assert not rs.warnings


def test_embedded_newlines_and_quotes_parse(tmp_path: Path) -> None:
    rows = builtin_rows()[:2]
    rows[0]["body"] = 'line one\nline "two", with a comma\r\n\nline four'
    rs = load_rows(write_csv(tmp_path / "d.csv", rows))
    assert rs.rows[0]["body"] == 'line one\nline "two", with a comma\r\n\nline four'
    assert rs.row_ids == ("9000", "9001")


def test_missing_column_is_named(tmp_path: Path) -> None:
    cols = [c for c in COLUMNS if c != "negative_example_2"]
    path = write_csv(tmp_path / "d.csv", builtin_rows(), cols)
    with pytest.raises(DataFormatError, match="missing column negative_example_2"):
        load_rows(path)


def test_bad_label_names_column_row_and_id(tmp_path: Path) -> None:
    rows = builtin_rows()
    rows[4]["rule_violation"] = "0.7"
    with pytest.raises(DataFormatError, match=r"rule_violation is '0\.7' in row 5 \(row_id '9004'\), line 6"):
        load_rows(write_csv(tmp_path / "d.csv", rows))


def test_partly_empty_label_is_an_error_but_all_empty_means_unlabelled(tmp_path: Path) -> None:
    rows = builtin_rows()
    rows[1]["rule_violation"] = ""
    with pytest.raises(DataFormatError, match=r"rule_violation is empty in row 2 \(row_id '9001'\)"):
        load_rows(write_csv(tmp_path / "a.csv", rows))
    for r in rows:
        r["rule_violation"] = ""
    rs = load_rows(write_csv(tmp_path / "b.csv", rows))
    assert rs.labels is None
    assert any("empty in every row" in w for w in rs.warnings)


def test_no_label_column(tmp_path: Path) -> None:
    rs = load_rows(write_csv(tmp_path / "d.csv", builtin_rows(), COLUMNS[:-1]))
    assert rs.labels is None and not rs.warnings


def test_duplicate_row_id_names_both_rows(tmp_path: Path) -> None:
    rows = builtin_rows()
    rows[7]["row_id"] = rows[2]["row_id"]
    with pytest.raises(DataFormatError, match=r"duplicate row_id '9002' in row 3 and row 8"):
        load_rows(write_csv(tmp_path / "d.csv", rows))


def test_empty_row_id_and_rule_refused(tmp_path: Path) -> None:
    rows = builtin_rows()
    rows[3]["rule"] = "  "
    with pytest.raises(DataFormatError, match=r"column rule is empty in row 4 \(row_id '9003'\)"):
        load_rows(write_csv(tmp_path / "d.csv", rows))


def test_empty_other_cells_are_counted_not_refused(tmp_path: Path) -> None:
    rows = builtin_rows()
    rows[0]["body"] = ""
    rows[1]["positive_example_1"] = ""
    rs = load_rows(write_csv(tmp_path / "d.csv", rows))
    assert rs.rows[0]["body"] == ""
    assert "1 row with an empty body" in rs.warnings


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\xef\xbb\xbf"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match="is empty"):
        load_rows(path)


def test_header_only(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", [])
    with pytest.raises(DataFormatError, match="no data rows"):
        load_rows(path)


def test_wrong_field_count_names_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", builtin_rows()[:3])
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2] + ",extra"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"row 2 \(row_id '9001'\), line 3 has 10 fields, the header has 9"):
        load_rows(path)


def test_non_utf8_bytes_replaced_and_reported(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", builtin_rows()[:4])
    raw = path.read_bytes().replace(b"Get 1000 free coins", b"Get 1000 free \xff\xfe coins")
    raw = raw.replace(b"Lose 20 pounds", b"Lose 20 \xe9 pounds")  # latin-1 e-acute
    path.write_bytes(b"\xef\xbb\xbf" + raw)  # and a BOM
    rs = load_rows(path)
    assert rs.columns[0] == "row_id"
    assert rs.replaced_rows == ("9000", "9001")
    assert rs.rows[0]["body"].startswith("Get 1000 free \ufffd\ufffd coins")
    assert any("2 rows had bytes that are not UTF-8" in w for w in rs.warnings)
    assert not any("\udcff" in v for r in rs.rows for v in r.values())


def test_genuine_replacement_character_is_not_counted(tmp_path: Path) -> None:
    rows = builtin_rows()[:2]
    rows[0]["body"] = "already has \ufffd in it"
    rs = load_rows(write_csv(tmp_path / "d.csv", rows))
    assert rs.replaced_rows == ()


def test_rows_from_records_validates_like_a_file() -> None:
    rows = builtin_rows()
    rows[5]["rule_violation"] = "yes"
    with pytest.raises(DataFormatError, match=r"rule_violation is 'yes' in row 6"):
        rows_from_records(rows)


def test_real_train_csv(jigsaw_train: Path) -> None:
    rs = load_rows(jigsaw_train)
    assert len(rs) == 2029
    assert rs.labels is not None and int(rs.labels.sum()) == 1031
    assert len(set(rs.rules)) == 2
    assert any("\n" in r["positive_example_1"] for r in rs.rows)


def test_data_module_does_not_import_torch() -> None:
    code = (
        "import sys, loraguard.scoring, loraguard.scoring.data; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
