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
