"""Scoring: a probability per Jigsaw row from a base model, with or without a LoRA adapter.

- `load_rows(path)`: read and validate a Jigsaw-format CSV (`data.py`).
- `score_rows(model, tokenizer, rows, ...)`: P(Yes) read from the answer token's logits (default),
  or the case study's generate-and-parse baseline (`api.py`, `logits.py`, `generate.py`).
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
from loraguard.scoring.api import METHODS, EncodedPrompts, ScoreResult, Timing, encode_prompts, score_rows
from loraguard.scoring.data import LABEL_COLUMN, REQUIRED_COLUMNS, RowSet, load_rows, rows_from_records
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
    "encode_prompts",
    "get_template",
    "load_rows",
    "parse_answer",
    "parse_answers",
    "parse_duration",
    "roc_auc",
    "rows_from_records",
    "run_summary",
    "score_file",
    "score_rows",
]
