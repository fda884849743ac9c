"""The driver's half of `RayExecutor`: gather the workers' rows and check them as a whole.

`collect_batches` concatenates the scored batches (in input order), finds what a single batch cannot
see (duplicate `row_id`s across batches, a label column filled in some batches only), checks that
every row came back exactly once and rebuilds `load_rows`' data warnings from the per-batch counts.
`scored_runs` turns them into one `ScoredRun` per run (its `ScoreResult` and the per-batch monitors),
which the score pipeline finishes exactly as it finishes a local run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from loraguard.distributed.worker import BatchInfo, ScorerConfig, decode_info
from loraguard.errors import DataFormatError, DistributedError
from loraguard.scoring.api import EncodedPrompts, ScoreResult, Timing
from loraguard.scoring.executor import ScoredRun

__all__ = ["Collected", "collect_batches", "collected_prompts", "scored_runs", "worker_counts", "worker_seconds"]


@dataclass(frozen=True)
class Collected:
    """Every row the workers returned, in input order, with the per-batch side results."""

    source: str
    row_ids: tuple[str, ...]
    rules: tuple[str, ...]
    labels: npt.NDArray[np.int8] | None
    probabilities: tuple[npt.NDArray[np.float64], ...]
    """One array per run (adapter, or the bare base)."""
    parsed: tuple[npt.NDArray[np.bool_], ...]
    mass: tuple[npt.NDArray[np.float64], ...]
    infos: tuple[BatchInfo, ...]
    warnings: tuple[str, ...]
    prompts: tuple[str, ...] = ()
    input_ids: tuple[tuple[int, ...], ...] = ()


def _readonly(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    a.setflags(write=False)
    return a


def collect_batches(batches: Iterable[Any], config: ScorerConfig) -> Collected:
    """Concatenate the workers' `pyarrow.Table`s and check them as a whole (see the module docstring)."""
    import pyarrow as pa

    tables = [t for t in batches if t.num_rows]
    source = config.source
    if not tables:
        raise DataFormatError(f"{source}: the header is there but there are no data rows", path=source)
    table = pa.concat_tables(tables)
    row_ids = tuple(table.column("row_id").to_pylist())
    infos = tuple(decode_info(b) for b in table.column("info").to_pylist() if b is not None)
    returned = sum(i.rows for i in infos)
    if returned != len(row_ids):  # pragma: no cover - would be a Ray bug: say so rather than write it
        raise DistributedError(f"{source}: the workers reported {returned} rows but {len(row_ids)} came back")
    seen: dict[str, int] = {}
    for index, rid in enumerate(row_ids):
        first = seen.setdefault(rid, index)
        if first != index:
            raise DataFormatError(
                f"{source}: duplicate row_id {rid!r} in row {first + 1} and row {index + 1} "
                f"(row_id {rid!r}): row_ids must be unique",
                path=source,
            )
    labels, labels_empty = _labels(table.column("label").to_pylist(), row_ids, config, source)
    runs = range(len(config.names))
    prompts: tuple[str, ...] = ()
    ids: tuple[tuple[int, ...], ...] = ()
    if config.want_prompts:
        prompts = tuple(table.column("prompt").to_pylist())
        ids = tuple(tuple(x) for x in table.column("input_ids").to_pylist())
    return Collected(
        source=source,
        row_ids=row_ids,
        rules=tuple(table.column("rule").to_pylist()),
        labels=labels,
        probabilities=tuple(_readonly(table.column(f"p{i}").to_numpy().astype(np.float64)) for i in runs),
        parsed=tuple(_readonly(table.column(f"parsed{i}").to_numpy(zero_copy_only=False).astype(bool)) for i in runs),
        mass=tuple(_readonly(table.column(f"mass{i}").to_numpy().astype(np.float64)) for i in runs),
        infos=infos,
        warnings=_warnings(infos, labels_empty),
        prompts=prompts,
        input_ids=ids,
    )


def _labels(
    cells: Sequence[str], row_ids: Sequence[str], config: ScorerConfig, source: str
) -> tuple[npt.NDArray[np.int8] | None, bool]:
    """Labels as `load_rows` reads them over the whole file: all empty means no labels, some empty is
    an error (a batch sees only its own rows, so the mixed case across batches is caught here)."""
    from loraguard.scoring.data import LABEL_COLUMN, parse_labels

    if LABEL_COLUMN not in config.columns:
        return None, False
    labels = parse_labels(cells, lambda i: f"row {i + 1} (row_id {row_ids[i]!r})", source=source)
    return labels, labels is None


def _warnings(infos: Sequence[BatchInfo], labels_empty: bool) -> tuple[str, ...]:
    """`load_rows`' warnings (`data_warnings`) from the per-batch counts."""
    from loraguard.scoring.data import data_warnings

    empty: dict[str, int] = {}
    replaced: list[str] = []
    for info in infos:
        for col, n in info.empty_cells.items():
            empty[col] = empty.get(col, 0) + n
        replaced.extend(info.replaced)
    return data_warnings(empty, replaced, labels_empty=labels_empty)


def scored_runs(c: Collected, method: str, wall_s: float) -> tuple[ScoredRun, ...]:
    """One `ScoredRun` per run, in run order: its `ScoreResult` and its per-batch monitors."""
    return tuple(
        ScoredRun(_result(c, run, method, wall_s), monitors=tuple(info.monitors[run] for info in c.infos))
        for run in range(len(c.probabilities))
    )


def _result(c: Collected, run: int, method: str, wall_s: float) -> ScoreResult:
    """A `ScoreResult` for run `run`. Its `timing.seconds` is the run's share of the wall time (all runs
    share each batch, so they are apportioned by the workers' seconds); token counts are sums."""
    timings = [info.timings[run] for info in c.infos]
    own = sum(t.seconds for t in timings)
    every = sum(t.seconds for info in c.infos for t in info.timings) or 1.0
    timing = Timing(
        seconds=wall_s * own / every,
        prompt_seconds=sum(t.prompt_seconds for t in timings),
        model_seconds=sum(t.model_seconds for t in timings),
        rows=len(c.row_ids),
        prompt_tokens=sum(t.prompt_tokens for t in timings),
        computed_tokens=sum(t.computed_tokens for t in timings),
        prefix_tokens_skipped=sum(t.prefix_tokens_skipped for t in timings),
    )
    counts: dict[str, int] = {}
    for info in c.infos:
        for key, n in info.stage_counts[run].items():
            counts[key] = counts.get(key, 0) + n
    notes: list[str] = []
    for info in c.infos:
        notes.extend(n for n in info.notes if n not in notes)
    answers = next((i.answers[run] for i in c.infos if i.answers[run] is not None), None)
    return ScoreResult(
        row_ids=c.row_ids,
        probabilities=c.probabilities[run],
        parsed=c.parsed[run],
        stage_counts=MappingProxyType(counts),
        timing=timing,
        method=method,
        prompts=None,
        answers=answers,
        answer_mass=c.mass[run] if method == "logits" else None,
        texts=None,
        notes=tuple(notes),
        template=c.infos[0].template,
    )


def collected_prompts(c: Collected) -> EncodedPrompts:
    """Every row's prompt and token ids (collected when `--dump-prompts` asked for them)."""
    first = c.infos[0]
    return EncodedPrompts(
        row_ids=c.row_ids,
        prompts=c.prompts,
        input_ids=c.input_ids,
        template=first.template,
        add_special_tokens=first.add_special_tokens,
    )


def worker_counts(infos: Iterable[BatchInfo]) -> Mapping[str, int]:
    """Batches scored per worker (host:pid), in the order the workers first appear."""
    out: dict[str, int] = {}
    for info in infos:
        out[info.worker] = out.get(info.worker, 0) + 1
    return out


def worker_seconds(infos: Iterable[BatchInfo]) -> Mapping[str, float]:
    """Seconds each worker spent scoring (`score_rows`, every run of every batch it returned)."""
    out: dict[str, float] = {}
    for info in infos:
        out[info.worker] = out.get(info.worker, 0.0) + sum(t.seconds for t in info.timings)
    return out
