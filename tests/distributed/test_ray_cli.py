"""`--ray` at the edges: without the extra, an unreachable cluster, options that need `--ray`, and
importing the CLI without importing Ray. None of these start a Ray instance."""

from __future__ import annotations

import builtins
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from report_helpers import make_adapter

from loraguard.errors import DistributedError


def _hide_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behave as if the ray extra were not installed, even when it is (and already imported)."""
    real = builtins.__import__

    def fake(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ray" or name.startswith("ray.") or name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)


@pytest.mark.parametrize("command", ["score", "matrix"])
def test_ray_without_the_extra_is_a_clean_one_line_error(
    run_cli: Any, monkeypatch: pytest.MonkeyPatch, rows_csv: Path, tmp_path: Path, command: str
) -> None:
    adapter = make_adapter(tmp_path / "adapter")
    args = {
        "score": ["score", str(rows_csv), "--base", str(tmp_path), "--out", str(tmp_path / "p.csv")],
        "matrix": ["matrix", str(adapter), "--out", str(tmp_path / "m.csv")],
    }[command]
    _hide_ray(monkeypatch)
    code, out, err = run_cli([*args, "--ray"])
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        f"Error: {'--ray' if command == 'score' else 'matrix --ray'} needs the 'ray' extra: "
        "pip install 'loraguard[ray]'"
    ]
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "m.csv").exists()


def test_an_unreachable_address_fails_fast_with_what_to_do(tmp_path: Path) -> None:
    """In a fresh process (this one may already hold the session's Ray, which would be reused)."""
    adapter = make_adapter(tmp_path / "adapter")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "loraguard",
            "matrix",
            str(adapter),
            "--out",
            str(tmp_path / "m.csv"),
            "--ray-address",
            "127.0.0.1:1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "cannot reach the Ray cluster at 127.0.0.1:1" in proc.stderr and "ray status" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "m.csv").exists()


def test_address_checks() -> None:
    pytest.importorskip("ray")
    from loraguard.distributed.cluster import probe_address

    with pytest.raises(DistributedError, match="expected auto, local, HOST:PORT"):
        probe_address("head-node")
    with pytest.raises(DistributedError, match=r"cannot reach the Ray cluster at ray://127\.0\.0\.1:1"):
        probe_address("ray://127.0.0.1:1")


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--workers", "3"], "--workers only apply with --ray"),
        (["--gpus-per-worker", "1", "--ray-batch-rows", "8"], "--gpus-per-worker, --ray-batch-rows only apply"),
        (["--ray", "--time-budget", "1h"], "--time-budget is not supported with --ray"),
    ],
)
def test_ray_only_options_are_refused_without_ray(
    run_cli: Any, rows_csv: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    pytest.importorskip("ray")
    code, _, err = run_cli(["score", str(rows_csv), "--base", str(tmp_path), "--out", str(tmp_path / "p.csv"), *extra])
    assert code == 2 and message in err


@pytest.mark.parametrize("which", ["data", "out"])
def test_parquet_needs_ray(run_cli: Any, rows_csv: Path, tmp_path: Path, which: str) -> None:
    data = tmp_path / "rows.parquet" if which == "data" else rows_csv
    out = tmp_path / ("p.parquet" if which == "out" else "p.csv")
    code, _, err = run_cli(["score", str(data), "--base", str(tmp_path), "--out", str(out)])
    assert code == 2 and "Parquet is read and written by the Ray path only: add --ray" in err
    assert not out.exists()


def test_importing_the_cli_and_the_package_does_not_import_ray() -> None:
    code = (
        "import sys; import loraguard, loraguard.distributed, loraguard.cli.cmd_score, loraguard.cli.cmd_matrix;"
        " from loraguard.cli.app import main; main(['score', '--help']); main(['matrix', '--help']);"
        " print('HEAVY', [m for m in ('ray', 'pyarrow', 'torch') if m in sys.modules])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout
    for option in ("--ray-address", "--workers", "--gpus-per-worker", "--cpus-per-worker", "--ray-batch-rows"):
        assert option in proc.stdout
    assert proc.stdout.count("--ray ") >= 2  # both commands document the flag


def test_workers_get_absolute_local_adapters_and_hub_ids_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loraguard.distributed.score import _for_workers

    (tmp_path / "fold0").mkdir()
    monkeypatch.chdir(tmp_path)
    assert _for_workers("fold0") == str((tmp_path / "fold0").resolve())
    assert _for_workers("some-org/fold1-lora") == "some-org/fold1-lora"  # each node fetches it itself
