"""`loraguard explain LG301`: print a rule's documentation."""

from __future__ import annotations

import sys

import typer

from loraguard.cli.options import format_option
from loraguard.errors import InputError
from loraguard.report.rule_formatter import RuleFormatter


def register(app: typer.Typer) -> None:
    app.command("explain", help="Print the documentation of a rule (e.g. LG301), or list all rules.")(explain)


def explain(
    code: str | None = typer.Argument(None, help="Rule code, e.g. LG301. Omit to list every rule."),
    fmt: str = format_option(RuleFormatter),
) -> int:
    from loraguard.codes import RULES
    from loraguard.probe.rules import all_rules

    rules = all_rules()
    if code is None:
        sys.stdout.write(RuleFormatter().render(rules, fmt))
        return 0
    found = RULES.get(code.upper())
    if found is None:
        raise InputError(f"no rule {code!r}; run `loraguard explain` to list the {len(rules)} rules.")
    sys.stdout.write(RuleFormatter(full=True).render([found], fmt))
    return 0
