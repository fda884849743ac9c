"""Fixtures for the monitor tests: a CLI runner with the monitor command registered."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence

import pytest


def _ensure_registered(*modules: str) -> None:
    from loraguard.cli import app as app_module

    app = app_module.app
    if not app.registered_commands:  # register the standard commands the way main() would
        for name in app_module.COMMAND_MODULES:
            try:
                importlib.import_module(f"loraguard.cli.{name}").register(app)
            except ImportError:  # a command another session has not written yet
                continue
    names = {c.name for c in app.registered_commands}
    for module in modules:
        if module.removeprefix("cmd_") not in names:
            importlib.import_module(f"loraguard.cli.{module}").register(app)


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[[Sequence[str]], tuple[int, str, str]]:
    """`run_cli([...])` → (exit code, stdout, stderr)."""
    _ensure_registered("cmd_monitor", "cmd_gate", "cmd_ensemble")
    from loraguard.cli.app import main

    def run(args: Sequence[str]) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run
