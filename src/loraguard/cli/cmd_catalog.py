"""`loraguard catalog [QUERY]`: the base models loraguard knows offline, and their quantized twins."""

from __future__ import annotations

import json
import re
import sys
from typing import Annotated

import typer

from loraguard.cli.options import TextOrJson

CATALOG_SCHEMA = "loraguard.catalog/1"


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
    fmt: Annotated[TextOrJson, typer.Option("--format", "-f", help="Output format.")] = TextOrJson.text,
) -> int:
    from loraguard.basemodel.catalog import load_catalog, search_catalog

    entries = search_catalog(query or "")
    if fmt == TextOrJson.json:
        payload = {
            "schema": CATALOG_SCHEMA,
            "query": query,
            "count": len(entries),
            "total": len(load_catalog()),
            "models": [entry.to_dict() for entry in entries],
        }
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        return 0 if entries else 1
    if not entries:
        print(f"no catalog model matches {query!r}; run `loraguard catalog` to list all {len(load_catalog())}.")
        return 1
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("model", "family", "variant", "params", "type", "aliases", "source"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(
            entry.name,
            entry.family,
            entry.variant,
            _params(entry.params),
            entry.model_type + ("" if entry.derivable else "*"),
            ", ".join(alias.name for alias in entry.aliases) or "-",
            _short_source(entry.source),
        )
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    console.print(table)
    console.print(
        f"{len(entries)} of {len(load_catalog())} models. * modules listed from a transformers skeleton built from "
        "the config (needs the ml extra); sources in full with --format json."
    )
    return 0


def _short_source(source: str) -> str:
    """`github:owner/repo@<sha>:path (how)` -> `github:owner/repo:path`; the full text is in the JSON."""
    return re.sub(r"@[0-9a-f]{40}:", ":", source.split(" (", 1)[0])


def _params(count: int) -> str:
    return f"{count / 1e9:.2f}B" if count >= 1e9 else f"{count / 1e6:.0f}M"
