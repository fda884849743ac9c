"""`loraguard scan`: check every adapter at or below some paths (the pre-commit hook and the GitHub Action)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from loraguard.cli.options import format_option
from loraguard.engines import EngineName
from loraguard.report.scan_formatter import ScanFormatter

# Files pre-commit hands over for an adapter folder: the folder is what gets checked.
_FOLDER_FILES = frozenset({"adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "adapter_model.pt"})


def register(app: typer.Typer) -> None:
    app.command(
        "scan",
        help="Check every adapter at or below PATHS statically: adapter folders, adapter_config.json or "
        "adapter_model.* files (their folder is checked), weights files, folders to search. Each is checked "
        "against --base, else its claimed base. Exit 0 without errors (--strict: without warnings), 1 when "
        "any adapter has them, 2 on usage errors or when no adapter is found.",
        epilog="Examples: loraguard scan adapters/ ; loraguard scan a/adapter_config.json b/adapter_config.json "
        "(what the pre-commit hook runs) ; loraguard scan adapters/ --base Qwen/Qwen2.5-1.5B-Instruct "
        '--summary "$GITHUB_STEP_SUMMARY"',
    )(scan_command)


def adapter_refs(paths: list[Path]) -> tuple[str, ...]:
    """The adapters to check: an adapter folder's own files stand for the folder; folders are searched."""
    from loraguard.errors import AdapterNotFoundError
    from loraguard.matrix.discover import discover_adapters

    found: list[str] = []
    for path in paths:
        if not path.exists():
            raise AdapterNotFoundError(
                f"{path}: no such file or folder. Pass adapter folders, adapter files or folders to search.", path=path
            )
        if path.name in _FOLDER_FILES and (path.parent / "adapter_config.json").is_file():
            found.append(str(path.parent))
        elif path.is_dir() and not (path / "adapter_config.json").is_file():
            found.extend(discover_adapters([path]))
        else:
            found.append(str(path))
    unique: dict[str, str] = {}
    for ref in found:
        unique.setdefault(os.path.realpath(ref), ref)
    return tuple(unique.values())


def scan_command(
    paths: Annotated[list[Path], typer.Argument(help="Adapter folders, adapter files or folders to search.")],
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            "-b",
            help="Base for every adapter: folder with config.json, .gguf, catalog name or Hub id. "
            "Default: each adapter's claimed base, if known offline.",
        ),
    ] = None,
    fmt: str = format_option(ScanFormatter),
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warnings too.")] = False,
    select: Annotated[
        list[str] | None, typer.Option("--select", help="Only rules whose code starts with this (repeatable).")
    ] = None,
    ignore: Annotated[
        list[str] | None, typer.Option("--ignore", help="Skip rules whose code starts with this (repeatable).")
    ] = None,
    engine: Annotated[
        list[EngineName] | None,
        typer.Option("--engine", "-e", help="Serving engine to check for too (repeatable): vllm, sglang, lorax."),
    ] = None,
    summary: Annotated[
        Path | None,
        typer.Option(
            "--summary",
            help='Append the markdown report to this file too (GitHub Actions: "$GITHUB_STEP_SUMMARY").',
        ),
    ] = None,
) -> int:
    from loraguard.checks.checker import check
    from loraguard.errors import InputError

    refs = adapter_refs(paths)
    if not refs:
        raise InputError(
            f"no adapter found at or below {', '.join(str(p) for p in paths)}: pass adapter folders "
            "(holding adapter_config.json), adapter files, or folders containing them"
        )
    engines = [e.value for e in engine or ()] or ["peft"]
    reports = [check(ref, base, select=select or (), ignore=ignore or (), engines=engines) for ref in refs]
    formatter = ScanFormatter(color=sys.stdout.isatty())
    if summary is not None:
        with summary.open("a", encoding="utf-8") as handle:
            handle.write(ScanFormatter().markdown(reports) + "\n")
    sys.stdout.write(formatter.render(reports, fmt))
    return max(r.exit_code(strict=strict) for r in reports)
