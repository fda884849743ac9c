"""Regular expressions from an adapter config, evaluated in bounded time.

PEFT treats `target_modules` (a string), `exclude_modules` (a string), `layers_pattern`, each
`modules_to_save` entry and the keys of `rank_pattern` / `alpha_pattern` as Python regular expressions
and matches them with `re` against every module name of the base. `re` backtracks: `(.*a){30}` spends
minutes on one name, and a config is untrusted input. So each pattern is, in order:

1. refused if longer than `MAX_PATTERN_CHARS`;
2. compiled with `re`, exactly as PEFT would: a `re.error` is what PEFT raises when loading;
3. refused if compiling it would unroll counted repeats (`((a{100}){100}){100}`) beyond
   `MAX_EXPANSION` positions (read from the parse `re` made; `regex` takes seconds to compile those);
4. matched with the `regex` package (a superset of `re` with the same matching rules for what `re`
   accepts) under a timeout of `MATCH_TIMEOUT_S` per module name, all patterns of one config sharing a
   budget of `BUDGET_S`.

A pattern that fails a step is recorded once as a `PatternProblem` and raises `ConfigPatternError`
wherever it is used afterwards: rules that need it are skipped and LG206 reports the problem.
Results are memoised per (pattern, name), so each rule asking again costs nothing.
"""

from __future__ import annotations

import re
import time
import warnings
from dataclasses import dataclass
from typing import Any

from loraguard.errors import ConfigPatternError

__all__ = [
    "BUDGET_S",
    "MATCH_TIMEOUT_S",
    "MAX_EXPANSION",
    "MAX_PATTERN_CHARS",
    "ConfigPatterns",
    "PatternProblem",
    "is_literal",
]

MAX_PATTERN_CHARS = 16_384
"""Longest pattern accepted (a 2,000-name alternation is about 70,000 characters: list the names instead)."""
MAX_EXPANSION = 20_000
"""Most positions the required copies of counted repeats may unroll to when compiled (about 0.1 s)."""
MATCH_TIMEOUT_S = 0.1
"""Longest one match of one pattern against one module name may take (real ones take microseconds)."""
BUDGET_S = 1.0
"""Longest all the config's patterns may take together, compiling and matching, in one check."""


@dataclass(frozen=True)
class PatternProblem:
    """A config pattern PEFT cannot use, or loraguard could not evaluate in bounded time."""

    field: str
    """The config field: `target_modules`, `exclude_modules`, `layers_pattern`, `modules_to_save`,
    `rank_pattern` or `alpha_pattern`."""
    pattern: str
    reason: str
    """`invalid` (re cannot compile it), `too-long`, `too-complex` (compiling would explode),
    `too-slow` (one match passed the timeout: catastrophic backtracking) or `budget` (all matches
    together passed the budget)."""
    message: str

    @property
    def peft_fails(self) -> bool:
        """PEFT itself fails or hangs on it (not only loraguard declining to evaluate it)."""
        return self.reason in {"invalid", "too-slow"}


def is_literal(text: str) -> bool:
    """Whether `text` matches only itself as a regex (no metacharacter, not even `.`)."""
    return bool(text) and re.escape(text) == text


class ConfigPatterns:
    """The regex engine of one adapter config: compiles each pattern once, memoises matches, enforces
    the per-match timeout and the shared budget, and records every `PatternProblem`."""

    def __init__(self, *, timeout_s: float = MATCH_TIMEOUT_S, budget_s: float = BUDGET_S) -> None:
        self.timeout_s = timeout_s
        self.budget_s = budget_s
        self.spent_s = 0.0
        self._compiled: dict[str, Any] = {}
        self._failed: dict[str, PatternProblem] = {}
        self._memo: dict[tuple[str, str, str], Any] = {}
        self._problems: dict[tuple[str, str], PatternProblem] = {}

    @property
    def problems(self) -> tuple[PatternProblem, ...]:
        """Every problem met so far, in the order met."""
        return tuple(self._problems.values())

    def validate(self, field: str, fragment: str, full: str | None = None) -> PatternProblem | None:
        """Compile `full` (the regex PEFT builds around `fragment`, default `fragment` itself) without
        matching anything; the problem, if any (also recorded)."""
        full = fragment if full is None else full
        try:
            self._pattern(field, fragment, full)
        except ConfigPatternError:
            return self._failed[full]
        return None

    def fullmatch(self, field: str, fragment: str, full: str, key: str) -> bool:
        """`re.fullmatch(full, key)` as PEFT runs it (bounded); `ConfigPatternError` if unusable."""
        return self._run("fullmatch", field, fragment, full, key) is not None

    def match(self, field: str, fragment: str, full: str, key: str) -> Any:
        """`re.match(full, key)` as PEFT runs it (bounded): the match or None; `ConfigPatternError` if unusable."""
        return self._run("match", field, fragment, full, key)

    # -- internals ------------------------------------------------------------------------------------

    def _run(self, mode: str, field: str, fragment: str, full: str, key: str) -> Any:
        memo = (mode, full, key)
        if memo in self._memo:
            return self._memo[memo]
        compiled = self._pattern(field, fragment, full)
        left = self.budget_s - self.spent_s
        if left <= 0:
            raise self._fail(field, fragment, full, "budget", self._budget_message(field, fragment))
        started = time.perf_counter()
        try:
            found = getattr(compiled, mode)(key, timeout=min(self.timeout_s, left))
        except TimeoutError:
            self.spent_s += time.perf_counter() - started
            if self.spent_s >= self.budget_s and left < self.timeout_s:
                raise self._fail(field, fragment, full, "budget", self._budget_message(field, fragment)) from None
            raise self._fail(
                field,
                fragment,
                full,
                "too-slow",
                f"{field} pattern {_show(fragment)} takes more than {self.timeout_s:g} s to match one module "
                f"name ({_show(key)}): catastrophic backtracking. PEFT matches it with Python's re against "
                "every module of the base, so loading the adapter would hang.",
            ) from None
        self.spent_s += time.perf_counter() - started
        self._memo[memo] = found
        return found

    def _pattern(self, field: str, fragment: str, full: str) -> Any:
        if full in self._compiled:
            return self._compiled[full]
        if full in self._failed:
            raise ConfigPatternError(self._failed[full].message)
        if len(fragment) > MAX_PATTERN_CHARS:
            raise self._fail(
                field,
                fragment,
                full,
                "too-long",
                f"{field} pattern of {len(fragment):,} characters (starts {_show(fragment[:40])}): more than "
                f"the {MAX_PATTERN_CHARS:,} loraguard evaluates. List module names instead of one huge regex.",
            )
        started = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # re's FutureWarning about possible set syntax
                parsed = _parse(full)
        except (re.error, RecursionError, OverflowError, ValueError, TypeError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            if full != fragment:  # a position would count in the regex PEFT builds around the pattern
                reason = re.sub(r" at position \d+.*$", "", reason)
            raise self._fail(
                field,
                fragment,
                full,
                "invalid",
                f"{field} pattern {_show(fragment)} is not a valid regular expression ({reason}): PEFT raises "
                "re.error when it loads the adapter. Fix the pattern (escape literal dots and brackets).",
            ) from None
        size = _expansion(parsed) if parsed is not None else 0
        if size > MAX_EXPANSION:
            raise self._fail(
                field,
                fragment,
                full,
                "too-complex",
                f"{field} pattern {_show(fragment)} repeats counted groups inside counted groups "
                f"({size:,} positions once expanded): loraguard does not evaluate it. Simplify the pattern.",
            )
        import regex  # a config without patterns never imports it

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                compiled = regex.compile(full)
        except (regex.error, RecursionError, OverflowError, ValueError, TypeError) as exc:
            raise self._fail(
                field,
                fragment,
                full,
                "too-complex",
                f"{field} pattern {_show(fragment)} could not be evaluated safely ({exc}).",
            ) from None
        finally:
            self.spent_s += time.perf_counter() - started
        self._compiled[full] = compiled
        return compiled

    def _fail(self, field: str, fragment: str, full: str, reason: str, message: str) -> ConfigPatternError:
        problem = PatternProblem(field, fragment, reason, message)
        self._failed[full] = problem
        self._problems.setdefault((field, fragment), problem)
        self._compiled.pop(full, None)
        return ConfigPatternError(message)

    def _budget_message(self, field: str, fragment: str) -> str:
        return (
            f"the config's regular expressions took more than {self.budget_s:g} s together (stopped at "
            f"{field} pattern {_show(fragment)}): loraguard did not evaluate them all, so the rules that "
            "need them were skipped. Use fewer or simpler patterns (plain module names match in constant time)."
        )


def _show(text: str, limit: int = 80) -> str:
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return repr(shown)


def _parse(pattern: str) -> Any:
    """re's parse of `pattern` (raises re.error as `re.compile` would); None where the parser is not
    reachable (then only `re.compile` validates)."""
    try:
        from re import _parser  # type: ignore[attr-defined]  # CPython >= 3.11
    except ImportError:  # pragma: no cover - another interpreter
        re.compile(pattern)
        return None
    parsed = _parser.parse(pattern)
    re.compile(pattern)  # anything the parser accepts but the compiler refuses
    return parsed


def _expansion(parsed: Any) -> int:
    """Positions a compiler that unrolls counted repeats would emit for `parsed` (an upper estimate)."""

    def size(items: Any) -> int:
        total = 0
        for op, av in items:
            name = str(op)
            if name in {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}:
                low, _high, sub = av  # `regex` unrolls the required `low` copies; the rest stays a loop
                total += size(sub) * max(low, 1)
            elif name == "SUBPATTERN":
                total += size(av[-1])
            elif name == "BRANCH":
                total += sum(size(branch) for branch in av[1])
            elif name in {"ASSERT", "ASSERT_NOT"}:
                total += size(av[1])
            elif name == "ATOMIC_GROUP":
                total += size(av)
            elif name == "GROUPREF_EXISTS":
                total += size(av[1]) + (size(av[2]) if av[2] is not None else 0)
            else:
                total += 1
            if total > MAX_EXPANSION:
                return total
        return total

    try:
        return size(parsed)
    except RecursionError:
        return MAX_EXPANSION + 1
