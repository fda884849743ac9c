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
def test_demo_runs_on_the_real_model_by_default(tmp_path: Path, capsys) -> None:
    """The README's first command: the case study on SmolLM2-135M-Instruct and its reference adapters."""
    pytest.importorskip("torch")
    from loraguard import models

    st = models.status("smollm2-135m-instruct")
    if not st.cached:
        pytest.skip("the real model is not cached: run `loraguard models pull smollm2-135m-instruct` to run this test")
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "SmolLM2-135M-Instruct (real weights)" in text and "every adapter and step judged as expected" in text
    assert "--base smollm2-135m-instruct" in text and "--method generate --template plain" in text
    assert "a 100% parse rate hides the collapse" in " ".join(text.split())  # the table may wrap the cell
    for name in ("healthy", "healthy-redeploy", "collapsed"):
        assert (out / f"preds.{name}.csv").is_file()
    assert not (out / "probe").exists()  # the tiny model was not built
