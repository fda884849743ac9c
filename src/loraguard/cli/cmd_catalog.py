"""`loraguard catalog [QUERY]`: the base models loraguard knows offline, and their quantized twins."""

from __future__ import annotations

import shutil
import sys
from typing import Annotated

import typer

from loraguard.cli.options import format_option
from loraguard.report.catalog_formatter import CatalogFormatter


def register(app: typer.Typer) -> None:
    app.command(
        "catalog",
        help="List the base models known offline (name, family, variant, parameters, model type, source and "
        "quantized or re-uploaded aliases); QUERY keeps those whose name, family or an alias contains it.",
        epilog="Example: loraguard catalog qwen2.5 --format json",
    )(catalog)


def catalog(
    query: Annotated[
        str | None, typer.Argument(help="Case-insensitive text to find in names, families, aliases.")
    ] = None,
    fmt: str = format_option(CatalogFormatter),
) -> int:
    """Exit 0 when something matched, 1 when nothing did."""
    from loraguard.basemodel.catalog import load_catalog, search_catalog

    entries = search_catalog(query or "")
    width = shutil.get_terminal_size((200, 24)).columns if sys.stdout.isatty() else None
    formatter = CatalogFormatter(query=query, total=len(load_catalog()), width=width)
    sys.stdout.write(formatter.render(entries, fmt))
    return 0 if entries else 1
