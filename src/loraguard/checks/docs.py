"""Generate `docs/rules.md` from the rule table (so the docs cannot drift from the code)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loraguard.codes import CATEGORIES, Rule


def rules_markdown(rules: Sequence[Rule[Any]]) -> str:
    """The whole rules page: a table of `rules`, then each rule's documentation.

    docs/rules.md documents every rule: `rules_markdown(loraguard.probe.rules.all_rules())`.
    """
    lines = [
        "# loraguard rules",
        "",
        "Generated from the rule registry by `python scripts/gen_rules_doc.py`; do not edit by hand.",
        "`loraguard explain CODE` prints the same text.",
        "",
        "Codes: LG1xx adapter files, LG2xx config, LG3xx structure against the base, LG4xx tensor values, "
        "LG5xx identity and provenance, LG6xx dynamic probe, LG7xx serving engines, LG8xx guarded load. "
        "Codes are never reused.",
        "",
        "| code | name | category | severity | title |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {r.code} | `{r.name}` | `{r.category}` | {r.severity.value} | {r.title} |" for r in rules]
    lines += ["", "## Categories", "", "| category | meaning |", "|---|---|"]
    lines += [f"| `{name}` | {text} |" for name, text in CATEGORIES.items()]
    for r in rules:
        lines += [
            "",
            f"## {r.code} `{r.name}`",
            "",
            f"*{r.title}*: category `{r.category}`, default severity **{r.severity.value}**.",
            "",
        ]
        lines += [_section(para) for para in r.doc.split("\n\n")]
    return "\n".join(lines).rstrip() + "\n"


def _section(paragraph: str) -> str:
    text = " ".join(line.strip() for line in paragraph.splitlines())
    for head in ("What it checks:", "Why it matters:", "How to fix:"):
        if text.startswith(head):
            return f"**{head[:-1]}.** {text[len(head) :].strip()}\n"
    return text + "\n"
