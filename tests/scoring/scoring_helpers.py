"""Helpers shared by the scoring tests (imported as `scoring_helpers`)."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

from loraguard.scoring.builtin_rows import COLUMNS, builtin_rows

THIRD_RULE = "No spoilers: Do not reveal plot details of recent movies or shows without a spoiler tag."


def write_csv(path: Path, rows: Sequence[Mapping[str, str]], columns: Sequence[str] = COLUMNS) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def mixed_rows() -> list[dict[str, str]]:
    """Three rules, prompts of very different lengths, rows of one rule with different examples,
    and a rule with a single row (scored without the prefix cache)."""
    rows = builtin_rows()
    for i, row in enumerate(rows):
        row["body"] = " ".join([row["body"]] * (1 + 3 * (i % 4)))  # 1x, 4x, 7x, 10x the text
        if i % 3 == 0:  # some rows of a rule carry other examples: the shared prefix is shorter
            row["positive_example_2"] = f"Totally different example number {i}."
    rows.append(
        {
            **rows[0],
            "row_id": "9900",
            "rule": THIRD_RULE,
            "body": "The butler did it, he dies at the end.",
            "rule_violation": "1",
        }
    )
    rows.append(
        {**rows[1], "row_id": "9901", "rule": THIRD_RULE, "body": "Great movie, go see it!", "rule_violation": "0"}
    )
    rows.append(
        {**rows[2], "row_id": "9902", "rule": "A rule with one row only.", "body": "hello there", "rule_violation": "0"}
    )
    return rows
