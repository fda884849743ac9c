"""The `loraguard` command: a thin shell over the library.

Each command lives in its own module `loraguard/cli/cmd_<name>.py` exposing `register(app)`.
Commands return their exit code: 0 pass, 1 findings/alerts/fail, 2 bad input or usage.
Known errors (`LoraguardError`) print one `Error:` line on stderr and exit 2; set
`LORAGUARD_DEBUG=1` to see the traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

import typer

from loraguard.errors import LoraguardError

COMMAND_MODULES = (
    "cmd_check",
    "cmd_explain",
    "cmd_demo",
    "cmd_monitor",
    "cmd_gate",
    "cmd_ensemble",
    "cmd_score",
    "cmd_probe",
    "cmd_matrix",
    "cmd_registry",
    "cmd_serve",
    "cmd_models",
)
_loaded: set[str] = set()

app = typer.Typer(
    name="loraguard",
    help="Stop a LoRA adapter from silently breaking an LLM classifier.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        from loraguard import __version__

        typer.echo(f"loraguard {__version__}")
        raise typer.Exit(0)


def _register(modules: Sequence[str]) -> None:
    for name in modules:
        if name not in _loaded:
            importlib.import_module(f"loraguard.cli.{name}").register(app)
            _loaded.add(name)


def _register_all() -> None:
    _register(COMMAND_MODULES)


def _modules_for(args: Sequence[str]) -> Sequence[str]:
    """Only the invoked command's module (a cold `check` imports nothing of score or probe);
    every module for `--help`, a typo or no command."""
    first = next((a for a in args if not a.startswith("-")), None)
    module = f"cmd_{first}" if first else None
    return [module] if module in COMMAND_MODULES else COMMAND_MODULES


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (also the console script's entry point)."""
    args = list(sys.argv[1:] if argv is None else argv)
    _register(_modules_for(args))
    try:
        result = app(args=args, prog_name="loraguard", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.TyperException as exc:  # usage errors (typer vendors click's exception classes)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            print(f"Error: {exc}", file=sys.stderr)
        return 2
    except typer.Abort:
        print("Aborted.", file=sys.stderr)
        return 130
    except LoraguardError as exc:
        if os.environ.get("LORAGUARD_DEBUG"):
            raise
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
