"""Fault injection for the Ray tests: scorers and a matrix check that kill their own worker process.

Ray pickles this module's classes by value (`register_pickle_by_value` in conftest), so the actors
need not import the tests folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loraguard.distributed.worker import BatchScorer
from loraguard.matrix import Cell, MatrixRow, check_cell


class KillOnceScorer(BatchScorer):
    """Dies (`os._exit(1)`, like a segfault or the OOM killer) on its `at_call`-th batch, once per run.

    The marker file holds `at_call`; the first actor to reach that call renames the marker away
    (atomic, so only one actor dies) and writes the row_ids of the batch it dropped beside it.
    """

    marker: Path | None = None

    def __call__(self, batch: Any) -> Any:
        self.calls += 1
        marker = self.marker
        if marker is not None and marker.exists() and self.calls == int(marker.read_text() or "1"):
            claimed = marker.with_suffix(".claimed")
            try:
                os.rename(marker, claimed)
            except FileNotFoundError:  # another actor got there first
                return self.score_batch(batch)
            rows = [str(v) for v in batch.column(0).to_pylist()]
            claimed.write_text("\n".join(rows))
            os._exit(1)
        return self.score_batch(batch)


class AlwaysDieScorer(BatchScorer):
    """Dies on every batch whose first row_id is in `poison` (a batch that keeps killing its worker),
    appending a line to `deaths` each time."""

    poison: frozenset[str] = frozenset()
    deaths: Path | None = None

    def __call__(self, batch: Any) -> Any:
        self.calls += 1
        first = batch.column(0).to_pylist()[0]
        first = first.decode() if isinstance(first, bytes) else str(first)
        if first in self.poison:
            if self.deaths is not None:
                with self.deaths.open("a") as fh:
                    fh.write(f"{os.getpid()}\n")
            os._exit(1)
        return self.score_batch(batch)


def kill_once(marker: Path) -> type[KillOnceScorer]:
    return type("KillOnceScorer", (KillOnceScorer,), {"marker": marker})


def always_die(poison: set[str], deaths: Path) -> type[AlwaysDieScorer]:
    return type("AlwaysDieScorer", (AlwaysDieScorer,), {"poison": frozenset(poison), "deaths": deaths})


def killing_check(substring: str, deaths: Path) -> Callable[[Cell], MatrixRow]:
    """A `check_cell` that kills its worker process for every adapter whose path contains `substring`."""

    def check(cell: Cell) -> MatrixRow:
        if substring in cell.adapter:
            with deaths.open("a") as fh:
                fh.write(f"{os.getpid()}\n")
            os._exit(3)
        return check_cell(cell)

    return check
