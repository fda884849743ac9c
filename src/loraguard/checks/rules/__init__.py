"""The static check's rules: importing this package registers them (one module per code family).

LG1xx files, LG2xx config, LG3xx structure, LG4xx values, LG5xx identity and the serving engines'
LG7xx. The probe's LG6xx rules register from `loraguard.probe.rules` and are never run here.
"""

from __future__ import annotations

from collections.abc import Iterable

from loraguard.checks.context import CheckContext
from loraguard.checks.rules import config, engines, files, identity, structure, values
from loraguard.codes import PROBE_FAMILY, RULES, Rule, by_prefix

__all__ = ["config", "engines", "files", "identity", "select_rules", "structure", "values"]


def select_rules(select: Iterable[str] = (), ignore: Iterable[str] = ()) -> list[Rule[CheckContext]]:
    """The static rules (every family but LG6xx, even when the probe's rules are registered too) whose
    code starts with a `select` prefix (all when empty) and no `ignore` prefix, by code."""
    static = (r for code, r in RULES.items() if not code.startswith(PROBE_FAMILY))
    return by_prefix(static, select, ignore)
