"""The one atomic writer every output goes through."""

from __future__ import annotations

from pathlib import Path

import pytest

from loraguard.errors import OutputExistsError
from loraguard.fileio import atomic_write


def test_never_replaces_without_overwrite_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("user data")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        atomic_write(target, "new")
    assert target.read_text() == "user data"
    atomic_write(target, "new", overwrite=True)
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_a_failing_writer_leaves_nothing_behind(tmp_path: Path) -> None:
    def boom(handle) -> None:
        handle.write("half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "x.csv", boom)
    assert list(tmp_path.iterdir()) == []


def test_a_target_that_appears_while_writing_is_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "x.csv"

    def racing(handle) -> None:
        handle.write("ours")
        target.write_text("theirs")

    with pytest.raises(OutputExistsError):
        atomic_write(target, racing)
    assert target.read_text() == "theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]


def test_binary_content_and_binary_writers(tmp_path: Path) -> None:
    """Bytes go in unchanged (no newline or encoding translation); `binary=True` hands writers a bytes handle."""
    raw = bytes(range(256)) + b"\r\n\n"
    assert atomic_write(tmp_path / "a.bin", raw).read_bytes() == raw
    got = atomic_write(tmp_path / "b.bin", lambda fh: fh.write(raw), binary=True)
    assert got.read_bytes() == raw
    assert atomic_write(tmp_path / "c.txt", "é\n", binary=True).read_bytes() == "é\n".encode()
    with pytest.raises(OutputExistsError):
        atomic_write(tmp_path / "a.bin", b"other")
    assert (tmp_path / "a.bin").read_bytes() == raw
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.bin", "c.txt"]
