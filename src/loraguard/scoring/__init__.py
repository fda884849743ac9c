"""Scoring: a probability per Jigsaw row from a base model, with or without a LoRA adapter.

- `load_rows(path)`: read and validate a Jigsaw-format CSV (`data.py`); `index_rows(path)` checks it
  the same way keeping no text, and `iter_row_chunks(path, index, n)` reads it again `n` rows at a time.
- `score_rows(model, tokenizer, rows, ...)`: P(Yes) read from the answer token's logits (default),
  or the case study's generate-and-parse baseline (`api.py`, `logits.py`, `generate.py`);
  `score_chunks` the same over rows that arrive in chunks (what `score` runs on a file).
- `score_file(data, base, adapters, ScoreOptions(out=...), executor=...)`: what `loraguard score` runs,
  the one score pipeline (`pipeline.py`: plan, execute, finish) with its options (`options.py`) and
  executor seam (`executor.py`); `LocalExecutor` scores in this process (`local.py`),
  `loraguard.distributed.RayExecutor` on a Ray cluster.
- `auc_report`, `run_summary`: the AUCs and the distribution summary printed after scoring (`metrics.py`);
  the summary and the degenerate flag come from `loraguard.monitor` (`summarize`, the `degenerate` rule).

Importing this package does not import torch; the model code does, when called.
"""

from __future__ import annotations

from loraguard.scoring.answers import AnswerTokens, answer_tokens
from loraguard.scoring.api import (
    METHODS,
    EncodedPrompts,
    ScoreResult,
    Timing,
    check_context_fits,
    encode_prompts,
    score_chunks,
    score_rows,
)
from loraguard.scoring.data import (
    LABEL_COLUMN,
    REQUIRED_COLUMNS,
    RowIndex,
    RowSet,
    index_rows,
    iter_row_chunks,
    load_rows,
    rows_from_records,
)
from loraguard.scoring.executor import Scored, ScoredRun, ScoreExecutor, ScorePlan
from loraguard.scoring.local import LocalExecutor
from loraguard.scoring.metrics import AucReport, auc_report, roc_auc, run_summary
from loraguard.scoring.options import ScoreOptions
from loraguard.scoring.parse import parse_answer, parse_answers
from loraguard.scoring.pipeline import FileScoreReport, RunReport, score_file
from loraguard.scoring.progress import TimeBudgetExceededError, parse_duration
from loraguard.scoring.prompts import BUILTIN_TEMPLATES, PromptTemplate, get_template

__all__ = [
    "BUILTIN_TEMPLATES",
    "LABEL_COLUMN",
    "METHODS",
    "REQUIRED_COLUMNS",
    "AnswerTokens",
    "AucReport",
    "EncodedPrompts",
    "FileScoreReport",
    "LocalExecutor",
    "PromptTemplate",
    "RowIndex",
    "RowSet",
    "RunReport",
    "ScoreExecutor",
    "ScoreOptions",
    "ScorePlan",
    "ScoreResult",
    "Scored",
    "ScoredRun",
    "TimeBudgetExceededError",
    "Timing",
    "answer_tokens",
    "auc_report",
    "check_context_fits",
    "encode_prompts",
    "get_template",
    "index_rows",
    "iter_row_chunks",
    "load_rows",
    "parse_answer",
    "parse_answers",
    "parse_duration",
    "roc_auc",
    "rows_from_records",
    "run_summary",
    "score_chunks",
    "score_file",
    "score_rows",
]
