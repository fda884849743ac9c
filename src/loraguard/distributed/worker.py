"""`BatchScorer`: the Ray Data actor that scores batches of rows, and what it sends back.

One actor per worker: `__init__` loads the base and every adapter once (`load_host`), then each
`__call__` gets a batch of raw rows (a `pyarrow.Table`), validates it like a CSV
(`rows_from_records`) and scores it with `score_rows` for each adapter in turn. Besides one output
row per input row (`row_id`, `rule`, the raw label, and per run `p<i>`, `parsed<i>`, `mass<i>`),
the first output row of each batch carries a `BatchInfo` in the `info` column: the batch's own
`Monitor` per run, its stage counts, timings and data warnings. That state travels with the rows
it describes, so when Ray retries a batch after a worker died, the batch's rows and its statistics
arrive exactly once, together, and the driver's merge equals a single-process monitor.

This module imports neither Ray nor torch at import time; the actor's process does.
"""

from __future__ import annotations

import os
import pickle
import socket
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loraguard.errors import DataFormatError
from loraguard.monitor import Monitor
from loraguard.scoring.answers import AnswerTokens
from loraguard.scoring.api import Timing
from loraguard.scoring.data import LABEL_COLUMN, REQUIRED_COLUMNS, rows_from_records

__all__ = ["BatchInfo", "BatchScorer", "ScorerConfig", "decode_info", "decode_records"]


@dataclass(frozen=True)
class ScorerConfig:
    """Everything an actor needs to load the model and score like `score_file` (picklable)."""

    base: str
    adapters: tuple[str, ...]
    names: tuple[str | None, ...]
    """One run per name: an adapter name, or `None` for the bare base."""
    columns: tuple[str, ...]
    """The input's column names, stripped like `load_rows` strips the header, in file order."""
    source: str
    template: str
    method: str
    answers: tuple[str, str]
    batch_size: int
    prefix_cache: bool
    max_new_tokens: int
    dtype: str
    device: str
    threads: int
    """torch intra-op threads per actor (its CPU share), so actors do not oversubscribe a node."""
    want_prompts: bool = False


@dataclass(frozen=True)
class BatchInfo:
    """Per-batch side results: one entry per run in `monitors`, `stage_counts`, `timings`, `answers`."""

    rows: int
    monitors: tuple[Monitor, ...]
    stage_counts: tuple[Mapping[str, int], ...]
    timings: tuple[Timing, ...]
    answers: tuple[AnswerTokens | None, ...]
    notes: tuple[str, ...]
    empty_cells: Mapping[str, int]
    replaced: tuple[str, ...]
    worker: str
    template: str
    add_special_tokens: bool
    extra: Mapping[str, Any] = field(default_factory=dict)


def decode_info(blob: bytes) -> BatchInfo:
    info = pickle.loads(zlib.decompress(blob))
    if not isinstance(info, BatchInfo):  # pragma: no cover - only our own workers write this column
        raise TypeError(f"unexpected batch info {type(info).__name__}")
    return info


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        # surrogateescape keeps each undecodable byte as one lone surrogate: `rows_from_records` then
        # replaces it with U+FFFD and reports the row, exactly as `load_rows` does for a file
        return value.decode("utf-8", errors="surrogateescape")
    return value if isinstance(value, str) else str(value)


def decode_records(batch: Any, columns: Sequence[str]) -> list[dict[str, str]]:
    """A `pyarrow.Table` batch as row dicts of text, columns renamed to `columns`."""
    data = [[_cell(v) for v in batch.column(i).to_pylist()] for i in range(batch.num_columns)]
    if len(columns) != len(data):
        raise DataFormatError(f"batch has {len(data)} columns, expected {len(columns)}")
    return [dict(zip(columns, values, strict=True)) for values in zip(*data, strict=True)]


class BatchScorer:
    """Callable class for `Dataset.map_batches`: load once, score every batch it is given."""

    def __init__(self, config: ScorerConfig) -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch

        from loraguard.scoring.host import load_host

        torch.set_num_threads(max(1, config.threads))
        self.config = config
        self.loaded = load_host(config.base, list(config.adapters), dtype=config.dtype, device=config.device)
        self.calls = 0
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, batch: Any) -> Any:
        self.calls += 1
        return self.score_batch(batch)

    def score_batch(self, batch: Any) -> Any:
        """Validate and score one batch; returns a `pyarrow.Table` with one row per input row."""
        import pyarrow as pa

        from loraguard.scoring.api import score_rows

        cfg = self.config
        records = decode_records(batch, cfg.columns)
        first = records[0].get("row_id", "").strip() if records else ""
        source = (
            f"{cfg.source} (in the Ray batch of {len(records)} rows starting at row_id {first!r}; row "
            "and line numbers count from that batch)"
        )
        rows = rows_from_records(records, source=source)
        out: dict[str, Any] = {
            "row_id": pa.array(list(rows.row_ids), pa.string()),
            "rule": pa.array(list(rows.rules), pa.string()),
            "label": pa.array([r[LABEL_COLUMN].strip() if LABEL_COLUMN in r else "" for r in rows], pa.string()),
        }
        monitors: list[Monitor] = []
        counts: list[dict[str, int]] = []
        timings: list[Timing] = []
        answers: list[AnswerTokens | None] = []
        notes: list[str] = []
        prompts = None
        for i, name in enumerate(cfg.names):
            with self.loaded.activate(name):
                result = score_rows(
                    self.loaded.model,
                    self.loaded.tokenizer,
                    rows,
                    template=cfg.template,
                    method=cfg.method,
                    batch_size=cfg.batch_size,
                    prefix_cache=cfg.prefix_cache,
                    answers=cfg.answers,
                    max_new_tokens=cfg.max_new_tokens,
                )
            probs = np.asarray(result.probabilities, dtype=np.float64)
            out[f"p{i}"] = pa.array(probs, pa.float64())
            out[f"parsed{i}"] = pa.array(np.asarray(result.parsed, dtype=bool), pa.bool_())
            mass = result.answer_mass if result.answer_mass is not None else np.full(len(probs), np.nan)
            out[f"mass{i}"] = pa.array(np.asarray(mass, dtype=np.float64), pa.float64())
            monitors.append(Monitor().update(probs, parsed=result.parsed))
            counts.append(dict(result.stage_counts))
            timings.append(result.timing)
            answers.append(result.answers)
            notes.extend(n for n in result.notes if n not in notes)
            prompts = prompts or result.prompts
        assert prompts is not None  # at least one run
        if cfg.want_prompts:
            out["prompt"] = pa.array(list(prompts.prompts), pa.string())
            out["input_ids"] = pa.array([list(ids) for ids in prompts.input_ids], pa.list_(pa.int32()))
        empty: dict[str, int] = {}
        for row in rows:
            for col in REQUIRED_COLUMNS:
                if not row[col].strip():
                    empty[col] = empty.get(col, 0) + 1
        info = BatchInfo(
            rows=len(rows),
            monitors=tuple(monitors),
            stage_counts=tuple(counts),
            timings=tuple(timings),
            answers=tuple(answers),
            notes=tuple(notes),
            empty_cells=empty,
            replaced=rows.replaced_rows,
            worker=self.worker,
            template=prompts.template,
            add_special_tokens=prompts.add_special_tokens,
        )
        blob = zlib.compress(pickle.dumps(info, protocol=pickle.HIGHEST_PROTOCOL))
        out["info"] = pa.array([blob] + [None] * (len(rows) - 1), pa.binary())
        return pa.table(out)
