"""The `loraguard` command: a thin shell over the library.

Each command lives in its own module `loraguard/cli/cmd_<name>.py` exposing `register(app)`.
Commands return their exit code: 0 pass, 1 findings/alerts/fail, 2 bad input or usage, 3 an
internal error (a bug in loraguard). Known errors (`LoraguardError`) print one `Error:` line on
stderr and exit 2; anything else prints one `Error: internal error ...` line and exits 3. Set
`LORAGUARD_DEBUG=1` to see the traceback instead. Every message is passed through
`textsafe.printable` first: names from inputs never put raw control sequences on the terminal.

Warnings and info logs of the libraries loraguard drives (transformers, PEFT, torch, accelerate,
huggingface_hub) and their progress bars are not the user's business and stay hidden; the global
`--verbose` flag (before the command: `loraguard --verbose probe ...`) shows them.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Sequence

import typer

from loraguard.errors import LoraguardError
from loraguard.textsafe import printable

COMMAND_MODULES = (
    "cmd_check",
    "cmd_explain",
    "cmd_catalog",
    "cmd_demo",
    "cmd_monitor",
    "cmd_gate",
    "cmd_ensemble",
    "cmd_score",
    "cmd_probe",
    "cmd_matrix",
    "cmd_registry",
    "cmd_serve",
    "cmd_scan",
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


EXIT_INTERNAL = 3
"""Exit code of an unexpected exception (a bug in loraguard, never a bad input)."""
LIBRARIES = ("transformers", "peft", "torch", "accelerate", "huggingface_hub", "tokenizers", "safetensors")
"""Libraries whose warnings and logs `--verbose` shows (hidden otherwise)."""
_QUIET_ENV = {
    "TRANSFORMERS_VERBOSITY": "error",  # read when transformers is imported
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' weight-loading bars follow it too
}


def _show_version(value: bool) -> None:
    if value:
        from loraguard import __version__

        typer.echo(f"loraguard {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_show_version, help="Print the version and exit."
    ),
    verbose: bool = typer.Option(
        False,
        "--verbose",
        help="Show the warnings, logs and progress bars of transformers, PEFT and torch (hidden by default).",
    ),
) -> None:
    """The options every command shares (`main` applies --verbose before parsing)."""


def _verbose(args: Sequence[str]) -> bool:
    """Whether `--verbose` comes before the command name (the global position)."""
    for arg in args:
        if arg == "--verbose":
            return True
        if not arg.startswith("-"):
            return False
    return False


@contextlib.contextmanager
def library_output(verbose: bool) -> Iterator[None]:
    """Hide the libraries' warnings, info logs and progress bars (unless `verbose`), restoring all after."""
    if verbose:
        yield
        return
    saved_env = {key: os.environ.get(key) for key in _QUIET_ENV}
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)
    loggers = {name: logging.getLogger(name) for name in LIBRARIES}
    levels = {name: logger.level for name, logger in loggers.items()}
    for logger in loggers.values():
        logger.setLevel(logging.ERROR)
    bars = _hf_progress_bars(enable=False)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="|".join(rf"{lib}(\..*)?$" for lib in LIBRARIES))
            yield
    finally:
        for key, old in saved_env.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
        for name, logger in loggers.items():
            logger.setLevel(levels[name])
        if bars:
            _hf_progress_bars(enable=True)


def _hf_progress_bars(*, enable: bool) -> bool:
    """Switch transformers' progress bars if transformers is already imported; whether they were on."""
    hf = sys.modules.get("transformers.utils.logging")
    if hf is None:
        return False
    was = bool(hf.is_progress_bar_enabled())
    (hf.enable_progress_bar if enable else hf.disable_progress_bar)()
    return was


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
    _safe_streams()
    _register(_modules_for(args))
    debug = bool(os.environ.get("LORAGUARD_DEBUG"))
    try:
        with library_output(_verbose(args)):
            result = app(args=args, prog_name="loraguard", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.TyperException as exc:  # usage errors (typer vendors click's exception classes)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            _error(str(exc))
        return 2
    except (typer.Abort, KeyboardInterrupt):
        print("Aborted.", file=sys.stderr)
        return 130
    except LoraguardError as exc:
        if debug:
            raise
        _error(str(exc))
        return 2
    except Exception as exc:  # a bug: one line, never a traceback (unless asked for)
        if debug:
            raise
        _error(
            f"internal error ({type(exc).__name__}: {exc}). This is a bug in loraguard, not in your input: "
            "please report it with the output of the same command run with LORAGUARD_DEBUG=1."
        )
        return EXIT_INTERNAL
    return int(result) if isinstance(result, int) else 0


def _error(message: str) -> None:
    """One `Error:` line on stderr, with any control characters from inputs made visible."""
    lines = printable(message).splitlines() or [""]
    print("Error: " + " ".join(line.strip() for line in lines), file=sys.stderr)


def _safe_streams() -> None:
    """Let stdout/stderr write any text: a name with undecodable bytes must never crash the output."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if callable(reconfigure) and getattr(stream, "errors", "strict") == "strict":
            with contextlib.suppress(Exception):
                reconfigure(errors="backslashreplace")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
