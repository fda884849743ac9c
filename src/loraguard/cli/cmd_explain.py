"""`loraguard explain LG301`: print a rule's documentation."""

from __future__ import annotations

import typer

from loraguard.errors import InputError


def register(app: typer.Typer) -> None:
    app.command("explain", help="Print the documentation of a rule (e.g. LG301), or list all rules.")(explain)


def explain(code: str | None = typer.Argument(None, help="Rule code, e.g. LG301. Omit to list every rule.")) -> int:
    from loraguard.codes import RULES
    from loraguard.probe.rules import all_rules

    rules = all_rules()
    if code is None:
        for r in rules:
            typer.echo(f"{r.code}  {r.severity.value:7s}  {r.category:24s}  {r.title}")
        return 0
    found = RULES.get(code.upper())
    if found is None:
        raise InputError(f"no rule {code!r}; run `loraguard explain` to list the {len(rules)} rules.")
    typer.echo(f"{found.code} {found.name} ({found.category}, {found.severity.value})\n{found.title}\n")
    typer.echo(found.doc)
    return 0
