"""Write docs/rules.md from the rule registry; `--check` exits 1 when the file is stale."""

from __future__ import annotations

import sys
from pathlib import Path

from loraguard.checks.docs import rules_markdown
from loraguard.probe.rules import all_rules

TARGET = Path(__file__).resolve().parents[1] / "docs" / "rules.md"


def main() -> int:
    text = rules_markdown(all_rules())
    if "--check" in sys.argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is stale: run python scripts/gen_rules_doc.py")
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
