"""`ScoreOptions`: how a file is scored, whichever executor scores it (this process or a Ray cluster).

One frozen object carries every option of `loraguard score` that is not about where it runs, so the
score pipeline (`loraguard.scoring.pipeline.score_file`) checks and uses each in one place; where it
runs is the executor's business (`LocalExecutor`, `loraguard.distributed.RayExecutor` with its own
`RayScoreOptions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loraguard.errors import InputError
from loraguard.scoring.progress import parse_duration

__all__ = ["ScoreOptions"]


@dataclass(frozen=True)
class ScoreOptions:
    """Every option of a scoring run; only `out` has no default."""

    out: str | Path
    """The prediction file; with several adapters, `stem.<adapter>.suffix` per adapter."""
    overwrite: bool = False
    """Replace existing output files (else every output is refused up front if it exists)."""
    template: str | Path = "chat"
    """A built-in template name or a Jinja file whose variables are the CSV columns."""
    method: str = "logits"
    """`logits` (P(Yes) from one forward pass) or `generate` (write tokens and parse them)."""
    answers: str | Sequence[str] = ("Yes", "No")
    """The positive and negative answer words (`"Yes,No"` or a pair)."""
    batch_size: int = 8
    prefix_cache: bool = True
    max_new_tokens: int = 10
    dtype: str = "auto"
    device: str = "auto"
    dump_prompts_to: str | Path | None = None
    """A JSONL file of each row's prompt and exact input ids (one file, whatever the number of runs)."""
    metrics_json: str | Path | None = None
    """A JSON file of the report (`FileScoreReport.to_dict`: AUCs, distribution, parse counts, timing)."""
    time_budget: float | str | None = None
    """Seconds or a duration like `9h`: stop early when the projected total would exceed it."""
    show_progress: bool = False

    def time_budget_seconds(self) -> float | None:
        """`time_budget` in seconds (None without one); `InputError` unless it is positive."""
        budget = parse_duration(self.time_budget) if isinstance(self.time_budget, str) else self.time_budget
        if budget is not None and budget <= 0:
            raise InputError(f"time budget {self.time_budget!r}: must be positive")
        return budget

    def extra_outputs(self) -> tuple[Path, ...]:
        """The files written besides the predictions."""
        return tuple(Path(p) for p in (self.dump_prompts_to, self.metrics_json) if p is not None)
