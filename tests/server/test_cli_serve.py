"""The `serve` command: a thin shell (no torch/FastAPI at import), its warnings and its errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def test_importing_the_command_imports_no_torch_or_fastapi() -> None:
    code = (
        "import sys, loraguard.cli.cmd_serve, loraguard.server; "
        "print(sorted(m for m in ('torch', 'fastapi', 'uvicorn', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_bad_base_is_a_clean_error(run_cli: Any, tmp_path: Path) -> None:
    code, _, err = run_cli(["serve", "--base", str(tmp_path / "nope"), "--registry", str(tmp_path / "r.db")])
    assert code == 2 and "not a local model folder" in err and "Traceback" not in err


def test_public_bind_warns_and_options_reach_the_app(
    run_cli: Any, fx: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.delenv("LORAGUARD_API_KEY", raising=False)
    code, _, err = run_cli(
        [
            "serve",
            "--base",
            str(fx["base"]),
            "--registry",
            str(tmp_path / "r.db"),
            "--host",
            "0.0.0.0",
            "--port",
            "9123",
            "--max-batch",
            "4",
            "--max-items",
            "7",
        ]
    )
    assert code == 0 and "exposes the server to the network without an API key" in err
    assert (seen["host"], seen["port"]) == ("0.0.0.0", 9123)
    config = seen["app"].state.service.config
    assert (config.max_batch, config.limits.max_items, config.api_key) == (4, 7, None)
    monkeypatch.setenv("LORAGUARD_API_KEY", "k")
    code, _, err = run_cli(["serve", "--base", str(fx["base"]), "--registry", str(tmp_path / "r.db")])
    assert code == 0 and "Warning" not in err and seen["host"] == "127.0.0.1"
    assert seen["app"].state.service.config.api_key == "k"


def test_connection_and_queue_limits_reach_uvicorn_and_the_app(
    run_cli: Any, fx: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.delenv("LORAGUARD_API_KEY", raising=False)
    base = ["serve", "--base", str(fx["base"]), "--registry", str(tmp_path / "r.db")]
    code, _, err = run_cli(base)
    assert code == 0, err
    config = seen["app"].state.service.config
    defaults = (config.max_queue, config.header_timeout, config.body_timeout, config.keep_alive_timeout)
    assert defaults == (256, 10.0, 30.0, 5.0)
    assert seen["timeout_keep_alive"] == 5.0 and seen["http"].__name__.startswith("Timed")
    code, _, err = run_cli(
        [*base, "--max-queue", "100", "--header-timeout", "2", "--body-timeout", "3", "--keep-alive-timeout", "4"]
    )
    assert code == 0, err
    config = seen["app"].state.service.config
    assert (config.max_queue, config.header_timeout, config.body_timeout, config.keep_alive_timeout) == (100, 2, 3, 4)
    assert seen["timeout_keep_alive"] == 4.0
    code, _, err = run_cli([*base, "--max-queue", "10", "--max-items", "64"])
    assert code == 2 and "max_queue 10 is below max_items 64" in err and "Traceback" not in err


def test_help_documents_every_limit_and_its_default(run_cli: Any) -> None:
    code, out, _ = run_cli(["serve", "--help"])
    assert code == 0
    blocks: dict[str, str] = {}  # each option's help text, its wrapped lines joined
    for line in out.splitlines():
        stripped = line.strip()
        if stripped.startswith("--"):
            current = stripped.split()[0]
            blocks[current] = stripped
        elif blocks and stripped:
            blocks[current] += " " + stripped
    for flag, default in (
        ("--max-queue", "256"),
        ("--header-timeout", "10.0"),
        ("--body-timeout", "30.0"),
        ("--keep-alive-timeout", "5.0"),
        ("--max-body-bytes", "1048576"),
    ):
        assert f"default: {default}" in blocks[flag], blocks[flag]
