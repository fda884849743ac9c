"""`ScanFormatter`: the check reports of every adapter `loraguard scan` found, as text, markdown (a CI job
summary) or JSON (`loraguard.scan/1`: the verdict and each `loraguard.check/1` report)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from loraguard.findings import Verdict
from loraguard.report.check_formatter import CheckFormatter
from loraguard.report.formatter import Formatter, OutputFormat, json_text

if TYPE_CHECKING:
    from loraguard.checks.report import CheckReport

__all__ = ["SCAN_SCHEMA", "ScanFormatter", "scan_verdict"]

SCAN_SCHEMA = "loraguard.scan/1"


def scan_verdict(reports: Sequence[CheckReport]) -> Verdict:
    """The worst verdict of `reports` (pass for none)."""
    worst = max((r.verdict for r in reports), key=lambda v: ("pass", "warn", "fail").index(v.value), default=None)
    return worst if worst is not None else Verdict.PASS


class ScanFormatter(Formatter["Sequence[CheckReport]"]):
    formats: ClassVar[tuple[OutputFormat, ...]] = (OutputFormat.text, OutputFormat.json, OutputFormat.markdown)
    command = "loraguard scan"

    def __init__(self, *, width: int = 110, color: bool = False) -> None:
        self.check = CheckFormatter(width=width, color=color)

    def text(self, result: Sequence[CheckReport]) -> str:
        """Each adapter's check report, then one line counting the verdicts."""
        parts = [self.check.text(r) for r in result]
        return "\n".join(parts) + _tally(result) + "\n"

    def markdown(self, result: Sequence[CheckReport]) -> str:
        """A heading with the overall verdict, then each adapter's markdown check report."""
        head = f"## loraguard scan: **{scan_verdict(result).value.upper()}**{_tally(result).removeprefix('scan:')}\n\n"
        return head + "\n".join(self.check.markdown(r) for r in result)

    def json(self, result: Sequence[CheckReport]) -> str:
        return json_text(
            {
                "schema": SCAN_SCHEMA,
                "verdict": scan_verdict(result).value,
                "reports": [r.to_dict() for r in result],
            },
            ensure_ascii=False,
        )


def _tally(result: Sequence[CheckReport]) -> str:
    counts = {v: sum(1 for r in result if r.verdict is v) for v in Verdict}
    said = ", ".join(f"{n} {v.value}" for v, n in counts.items() if n)
    return f"scan: {len(result)} adapter(s): {said or 'none'}"
