"""Contract tests over the rule table (`loraguard.codes`) and the generated docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from loraguard.checks.docs import rules_markdown
from loraguard.checks.rules import select_rules
from loraguard.codes import CATEGORIES, RULES, rule
from loraguard.findings import Severity
from loraguard.probe.rules import all_rules

REPO = Path(__file__).resolve().parents[2]


def test_every_rule_is_well_formed_and_documented() -> None:
    rules = all_rules()
    assert len({r.code for r in rules}) == len(rules)
    for r in rules:
        assert re.fullmatch(r"LG[1-9]\d\d", r.code)
        assert r.category in CATEGORIES
        for section in ("What it checks:", "Why it matters:", "How to fix:"):
            assert section in r.doc, f"{r.code} lacks {section!r}"


def test_every_category_has_a_rule() -> None:
    assert {r.category for r in all_rules()} == set(CATEGORIES)


def test_registration_rejects_duplicates_and_bad_codes() -> None:
    all_rules()
    with pytest.raises(ValueError):
        rule("LG301", "another-name", "shape-mismatch", Severity.ERROR, "dup")(lambda ctx: [])
    with pytest.raises(ValueError):
        rule("X1", "bad-code", "shape-mismatch", Severity.ERROR, "bad")(lambda ctx: [])
    with pytest.raises(ValueError):
        rule("LG999", "bad-category", "no-such-category", Severity.ERROR, "bad")(lambda ctx: [])
    assert "LG999" not in RULES


def test_select_and_ignore_by_prefix() -> None:
    assert {r.code[:3] for r in select_rules(["LG3"])} == {"LG3"}
    assert not any(r.code.startswith("LG4") for r in select_rules(ignore=["LG4"]))
    assert [r.code for r in select_rules(["LG301"])] == ["LG301"]


def test_docs_rules_md_is_generated_from_the_registry() -> None:
    text = (REPO / "docs" / "rules.md").read_text(encoding="utf-8")
    assert text == rules_markdown(all_rules()), "docs/rules.md is stale: run python scripts/gen_rules_doc.py"
