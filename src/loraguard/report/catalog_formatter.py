"""`CatalogFormatter`: the built-in base catalog for `loraguard catalog`, as text or JSON (`loraguard.catalog/1`).

The result is the catalog entries a query kept; the formatter knows the query and the catalog's size.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from loraguard.report.formatter import Formatter, json_text

if TYPE_CHECKING:
    from loraguard.basemodel.catalog import CatalogEntry

__all__ = ["CATALOG_SCHEMA", "CatalogFormatter"]

CATALOG_SCHEMA = "loraguard.catalog/1"


class CatalogFormatter(Formatter[Sequence["CatalogEntry"]]):
    command = "loraguard catalog"

    def __init__(self, *, query: str | None, total: int, width: int | None = None) -> None:
        self.query = query
        self.total = total
        self.width = width

    def text(self, result: Sequence[CatalogEntry]) -> str:
        if not result:
            return f"no catalog model matches {self.query!r}; run `loraguard catalog` to list all {self.total}.\n"
        from rich.console import Console
        from rich.table import Table

        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("model", "family", "variant", "params", "type", "aliases", "source"):
            table.add_column(column, overflow="fold")
        for entry in result:
            table.add_row(
                entry.name,
                entry.family,
                entry.variant,
                _params(entry.params),
                entry.model_type + ("" if entry.derivable else "*"),
                ", ".join(alias.name for alias in entry.aliases) or "-",
                _short_source(entry.source),
            )
        buffer = io.StringIO()
        console = Console(file=buffer, highlight=False, width=self.width or 200)
        console.print(table)
        console.print(
            f"{len(result)} of {self.total} models. * modules listed from a transformers skeleton built from "
            "the config (needs the ml extra); sources in full with --format json."
        )
        return buffer.getvalue()

    def json(self, result: Sequence[CatalogEntry]) -> str:
        payload = {
            "schema": CATALOG_SCHEMA,
            "query": self.query,
            "count": len(result),
            "total": self.total,
            "models": [entry.to_dict() for entry in result],
        }
        return json_text(payload, ensure_ascii=False)


def _short_source(source: str) -> str:
    """`github:owner/repo@<sha>:path (how)` -> `github:owner/repo:path`; the full text is in the JSON."""
    return re.sub(r"@[0-9a-f]{40}:", ":", source.split(" (", 1)[0])


def _params(count: int) -> str:
    return f"{count / 1e9:.2f}B" if count >= 1e9 else f"{count / 1e6:.0f}M"
