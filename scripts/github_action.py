"""The GitHub Action's logic (`action.yml` runs this file after installing loraguard): check the adapters
at the given paths, optionally gate a candidate's predictions, write the markdown reports to the job
summary and the verdicts to the step's outputs.

Inputs come as `INPUT_*` environment variables (set by action.yml from the action's inputs):
`INPUT_PATHS` (required; whitespace-separated), `INPUT_BASE`, `INPUT_STRICT`, `INPUT_ENGINES`,
`INPUT_SELECT`, `INPUT_IGNORE`, `INPUT_GATE_CANDIDATE`, `INPUT_GATE_BASELINE`, `INPUT_GATE_LABELS`,
`INPUT_GATE_POLICY`, `INPUT_FAIL_ON_FINDINGS`. GitHub's `GITHUB_STEP_SUMMARY` and `GITHUB_OUTPUT`
files are appended to when set (run it locally without them: the reports go to stdout only).

Exit code: 0 when everything passed (or `fail-on-findings` is false), 1 when the check or the gate
failed, 2 when the inputs are wrong (no adapter found, an unreadable file).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

VERDICTS = {0: "pass", 1: "fail"}


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[\s,]+", os.environ.get(name, "")) if w]


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    return default if not value else value in {"1", "true", "yes", "on"}


def _append(env: str, text: str) -> None:
    target = os.environ.get(env)
    if target:
        with Path(target).open("a", encoding="utf-8") as handle:
            handle.write(text)


def _loraguard(args: list[str], *, capture: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "loraguard", *args]
    print("$ loraguard " + " ".join(args), flush=True)
    return subprocess.run(cmd, text=True, capture_output=capture, check=False)


def _fail(message: str) -> NoReturn:
    """Wrong inputs: say so, set the `verdict` output to `error` and exit 2."""
    print(f"loraguard action: {message}", file=sys.stderr, flush=True)
    _append("GITHUB_OUTPUT", "verdict=error\n")
    raise SystemExit(2)


def check_args() -> list[str]:
    """The `loraguard scan` command line for the inputs."""
    paths = _words("INPUT_PATHS")
    if not paths:
        _fail("the `paths` input is empty: name the adapter folders (or folders holding them) to check")
    args = ["scan", *paths]
    if os.environ.get("INPUT_BASE", "").strip():
        args += ["--base", os.environ["INPUT_BASE"].strip()]
    if _flag("INPUT_STRICT", False):
        args.append("--strict")
    for option, name in (("--engine", "INPUT_ENGINES"), ("--select", "INPUT_SELECT"), ("--ignore", "INPUT_IGNORE")):
        for value in _words(name):
            args += [option, value]
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        args += ["--summary", os.environ["GITHUB_STEP_SUMMARY"]]
    return args


def gate_args() -> list[str] | None:
    """The `loraguard gate` command line, or None when no candidate and baseline are given."""
    candidate, baseline = (os.environ.get(n, "").strip() for n in ("INPUT_GATE_CANDIDATE", "INPUT_GATE_BASELINE"))
    if not candidate and not baseline:
        return None
    if not (candidate and baseline):
        _fail("gate-candidate and gate-baseline go together: set both or neither")
    args = ["gate", candidate, "--baseline", baseline, "--format", "markdown"]
    for option, name in (("--labels", "INPUT_GATE_LABELS"), ("--policy", "INPUT_GATE_POLICY")):
        if os.environ.get(name, "").strip():
            args += [option, os.environ[name].strip()]
    if _flag("INPUT_STRICT", False):
        args.append("--strict")
    return args


def main() -> int:
    codes = {"check": _loraguard(check_args()).returncode}
    gate = gate_args()
    if gate is not None:
        done = _loraguard(gate, capture=True)
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
        _append("GITHUB_STEP_SUMMARY", done.stdout + "\n")
        codes["gate"] = done.returncode
    verdicts = {step: VERDICTS.get(code, "error") for step, code in codes.items()}
    worst = max(codes.values())
    overall = VERDICTS.get(worst, "error")
    _append(
        "GITHUB_OUTPUT",
        f"verdict={overall}\n" + "".join(f"{step}-verdict={v}\n" for step, v in verdicts.items()),
    )
    print("loraguard action: " + ", ".join(f"{step} {v}" for step, v in verdicts.items()), flush=True)
    if worst == 1 and not _flag("INPUT_FAIL_ON_FINDINGS", True):
        return 0
    return worst


if __name__ == "__main__":
    raise SystemExit(main())
