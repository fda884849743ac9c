"""`loraguard demo` end to end: every broken adapter caught, every step as expected, nothing outside --out."""

from __future__ import annotations

from pathlib import Path

import pytest

from loraguard.cli.app import main
from loraguard.errors import OutputExistsError


@pytest.mark.slow
def test_demo_runs_end_to_end_on_the_tiny_model(tmp_path: Path, capsys) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--tiny"]) == 0
    text = capsys.readouterr().out
    assert "every adapter and step judged as expected" in text
    assert "loraguard check" in text and "loraguard probe" in text and "loraguard gate" in text
    assert (out / "preds.degenerate.csv").is_file() and (out / ".loraguard-demo").is_file()
    assert main(["demo", "--out", str(out), "--check-only"]) == 0  # a second run reuses its own folder


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    from loraguard.demo.run import prepare_folder

    (tmp_path / "mine.txt").write_text("user data")
    with pytest.raises(OutputExistsError):
        prepare_folder(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "user data"


@pytest.mark.slow
def test_demo_on_the_real_model_shows_the_case_study(tmp_path: Path, capsys) -> None:
    """The default demo on SmolLM2-135M-Instruct: the collapsed adapter passes the static check, its
    generate-and-parse predictions are all 0.0 with every row parsed, and probe, monitor and gate catch it."""
    pytest.importorskip("torch")
    from loraguard.models import status

    if not status("smollm2-135m-instruct").cached:
        pytest.skip(
            "SmolLM2-135M-Instruct is not in loraguard's cache: run `loraguard models pull smollm2-135m-instruct`"
        )
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    text = " ".join(capsys.readouterr().out.split())  # rich wraps table cells
    assert "every adapter and step judged as expected" in text
    assert "parsed 100% of rows; 100% of predictions are 0.0" in text
    assert (out / "preds.collapsed.csv").is_file() and (out / "preds.healthy.csv").is_file()
