"""`RuleFormatter`: rule documentation for `loraguard explain`, as text or JSON (`loraguard.rules/1`).

The result is the rules asked for: one (`explain LG301`: its full documentation) or all of them
(`explain`: one line each).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loraguard.report.formatter import Formatter, json_text

if TYPE_CHECKING:
    from loraguard.codes import Rule

__all__ = ["RULES_SCHEMA", "RuleFormatter"]

RULES_SCHEMA = "loraguard.rules/1"


class RuleFormatter(Formatter[Sequence["Rule"]]):
    command = "loraguard explain"

    def __init__(self, *, full: bool = False) -> None:
        self.full = full
        """Each rule's whole documentation (else one line per rule)."""

    def text(self, result: Sequence[Rule]) -> str:
        if not self.full:
            return "".join(f"{r.code}  {r.severity.value:7s}  {r.category:24s}  {r.title}\n" for r in result)
        return "".join(f"{r.code} {r.name} ({r.category}, {r.severity.value})\n{r.title}\n\n{r.doc}\n" for r in result)

    def json(self, result: Sequence[Rule]) -> str:
        return json_text({"schema": RULES_SCHEMA, "rules": [_rule_dict(r) for r in result]}, ensure_ascii=False)


def _rule_dict(rule: Rule) -> dict[str, Any]:
    return {
        "code": rule.code,
        "name": rule.name,
        "category": rule.category,
        "severity": rule.severity.value,
        "title": rule.title,
        "doc": rule.doc,
    }
