"""`loraguard demo`: build a tiny Qwen2 base and real PEFT adapters locally, then check each one.

Everything is built offline on the CPU in a folder of its own (default `./loraguard-demo`), so a
user can rerun every printed command by hand.
"""

from __future__ import annotations

import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loraguard.errors import OutputExistsError

MARKER = ".loraguard-demo"


@dataclass(frozen=True)
class DemoRow:
    case: str
    description: str
    verdict: str
    expected: frozenset[str]
    found: frozenset[str]
    command: str
    millis: float

    @property
    def caught(self) -> bool:
        return self.expected <= self.found


def prepare_folder(out: Path) -> Path:
    """Create `out`, or clear it if an earlier demo made it; never touch a folder we did not make."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise OutputExistsError(
                f"{out} exists and was not made by `loraguard demo`; choose another folder with --out.", path=out
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by loraguard demo; safe to delete\n")
    return out


def run_check_demo(out: Path, *, say: Callable[[str], None] = print) -> list[DemoRow]:
    """Build the demo adapters under `out` and check each against its base."""
    from loraguard.checks.checker import check
    from loraguard.demo.cases import build_cases
    from loraguard.demo.tiny import quiet
    from loraguard.findings import Severity

    started = time.perf_counter()
    with quiet():
        built = build_cases(out)
    say(f"built a tiny Qwen2 base and {len(built)} PEFT adapters in {time.perf_counter() - started:.1f} s under {out}")
    rows = []
    for name, item in built.items():
        report = check(item.adapter, item.base)
        found = frozenset(report.categories(Severity.INFO) - {"provenance"})
        command = f"loraguard check {shlex.quote(str(item.adapter))} --base {shlex.quote(str(item.base))}"
        rows.append(
            DemoRow(
                name,
                item.case.description,
                report.verdict.value,
                item.case.expected - {"provenance"},
                found,
                command,
                report.timing_ms,
            )
        )
    return rows
