"""`RayExecutor`: the score pipeline's executor on a Ray cluster, with Ray Data and an actor pool of scorers.

`loraguard.scoring.score_file(data, base, adapters, options, executor=RayExecutor(RayScoreOptions(...)))`
plans and finishes exactly as in one process (the same checks, outputs, AUCs, monitor alerts, metrics
JSON); only the scoring runs here. The data is read with Ray Data (CSV or Parquet by suffix), cut into
blocks of `batch_rows` rows and fed to `workers` `BatchScorer` actors (`map_batches` with a fixed
`ActorPoolStrategy`); each actor loads the base and its adapters once and scores every batch it gets
with each adapter. The driver collects the rows in input order (`preserve_order`, `collect.py`):

- validation: each batch is checked by `rows_from_records`; duplicate `row_id`s across batches and a
  label column filled in some rows only are caught on the driver, before anything is written;
- the same probabilities up to float rounding (batches group rows differently, so padding and the
  prefix cache see other neighbours: differences stay below 1e-5);
- the monitor: each batch's own `Monitor` per run travels with its rows and the pipeline merges them,
  so the summary and alerts equal a single-process monitor's, retries included.

All runs finish together, so the pipeline checks every run before it writes any file.

Fault tolerance: an actor that dies (OOM, segfault, a lost node) is restarted, reloading the model,
and its unfinished batch is retried, up to `max_retries` times; past that the run fails with
`DistributedError` and nothing is written. Ray Data's default is to restart and retry forever, which
would loop for ever on a batch that always kills its worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import warnings
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loraguard.distributed.cluster import RaySession, import_ray, ray_session
from loraguard.distributed.collect import (
    Collected,
    collect_batches,
    collected_prompts,
    scored_runs,
    worker_counts,
    worker_seconds,
)
from loraguard.distributed.io import read_columns, read_dataset
from loraguard.distributed.worker import BatchScorer, ScorerConfig
from loraguard.errors import DistributedError, InputError, LoraguardError
from loraguard.scoring.api import PromptSink
from loraguard.scoring.data import RowSet
from loraguard.scoring.executor import Scored, ScoreExecutor, ScoreInput, ScorePlan

__all__ = ["RayExecution", "RayExecutor", "RayScoreOptions"]


@dataclass(frozen=True)
class RayScoreOptions:
    """How to run on Ray: where, how many actors, what each reserves, how big a batch, how many retries."""

    address: str | None = None
    """None: `RAY_ADDRESS` or a local instance; `local`, `auto`, `HOST:PORT` or `ray://HOST:PORT`."""
    workers: int = 2
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    batch_rows: int = 256
    """Rows per `map_batches` call: larger batches share more prompt prefixes, smaller ones balance better."""
    max_retries: int = 3
    """Restarts of a dead actor, and retries of the batch it was scoring, before the run fails."""
    num_cpus: int | None = None
    """CPUs of a local instance started here (None: all of this machine's)."""
    temp_dir: str | None = None

    def validate(self) -> None:
        if self.workers < 1:
            raise InputError(f"--workers {self.workers}: must be at least 1")
        if self.cpus_per_worker <= 0 or self.gpus_per_worker < 0:
            raise InputError("--cpus-per-worker must be positive and --gpus-per-worker at least 0")
        if self.batch_rows < 1:
            raise InputError(f"--ray-batch-rows {self.batch_rows}: must be at least 1")
        if self.max_retries < 0:
            raise InputError(f"max_retries {self.max_retries}: must be at least 0")


@dataclass(frozen=True)
class RayExecution:
    """How the cluster ran a score (`FileScoreReport.execution` after a `RayExecutor`)."""

    session: RaySession
    workers: int
    batches: int
    batches_per_worker: dict[str, int]
    """Batches returned per actor process (`host:pid`; a restarted actor is a new process)."""
    worker_seconds: dict[str, float]
    """Seconds each actor process spent in `score_rows`: the steady-state cost, without start-up."""
    wall_s: float
    """From the first Ray call to the last row collected (connection excluded: see `session.startup_s`)."""


@dataclass(frozen=True)
class RayExecutor(ScoreExecutor):
    """Score on Ray (see the module docstring). `scorer_cls` replaces the actor class (a subclass of
    `BatchScorer`, e.g. to add instrumentation or, in tests, to inject faults)."""

    options: RayScoreOptions = field(default_factory=RayScoreOptions)
    scorer_cls: type[BatchScorer] = BatchScorer

    def prepare(self, plan: ScorePlan) -> ScoreInput:
        """The Ray options, the extra, the input's header and the model paths, before Ray starts."""
        self.options.validate()
        if plan.options.time_budget is not None:
            raise InputError(
                "--time-budget is not supported with --ray: a cluster scores every batch at once, so "
                "there is no early projection to stop on; size --workers instead"
            )
        import_ray()
        if isinstance(plan.data, RowSet):
            raise InputError("the Ray executor reads a CSV or Parquet file: pass its path, not rows")
        columns = read_columns(plan.data)
        _check_model_paths(plan.base, plan.adapters)
        return ScoreInput(columns=columns)

    def execute(
        self, plan: ScorePlan, source: ScoreInput, prompts: PromptSink | None = None
    ) -> Generator[Scored, None, None]:
        opts, run, data = self.options, plan.options, plan.data
        assert not isinstance(data, RowSet)  # refused by `prepare`
        template = run.template
        config = ScorerConfig(
            base=str(Path(plan.base).resolve()),
            adapters=tuple(_for_workers(a) for a in plan.adapters),
            names=plan.names,
            columns=source.columns,
            source=str(data),
            template=str(Path(template).resolve()) if Path(str(template)).is_file() else str(template),
            method=run.method,
            answers=plan.answers,
            batch_size=run.batch_size,
            prefix_cache=run.prefix_cache,
            max_new_tokens=run.max_new_tokens,
            dtype=run.dtype,
            device=_worker_device(run.device, opts.gpus_per_worker),
            threads=max(1, int(opts.cpus_per_worker)),
            want_prompts=prompts is not None,
        )
        with ray_session(opts.address, num_cpus=opts.num_cpus, temp_dir=opts.temp_dir) as session:
            _check_resources(session, opts, plan.log)
            started = time.perf_counter()
            collected = _run(data, config, opts, self.scorer_cls, run.show_progress)
            wall = time.perf_counter() - started
        execution = RayExecution(
            session=session,
            workers=opts.workers,
            batches=len(collected.infos),
            batches_per_worker=dict(worker_counts(collected.infos)),
            worker_seconds=dict(worker_seconds(collected.infos)),
            wall_s=wall,
        )
        runs = scored_runs(collected, run.method, wall)
        if prompts is not None:
            prompts(collected_prompts(collected), runs[0].result.answers)
        yield Scored(rows=collected, runs=runs, execution=execution)


def _check_model_paths(base: str | Path, adapters: Sequence[str | Path]) -> None:
    """The checks `load_host` makes, on the driver, before any actor starts (the driver must see the
    same paths as the workers: a shared file system)."""
    from loraguard.scoring.host import check_adapter
    from loraguard.scoring.model import check_base

    check_base(base)
    for adapter in adapters:
        check_adapter(adapter)


def _for_workers(adapter: str | Path) -> str:
    """A local adapter as an absolute path (workers may run elsewhere in the tree); a Hub id as itself,
    so each node fetches it into its own cache."""
    local = Path(adapter).expanduser()
    return str(local.resolve()) if local.exists() else str(adapter)


def _worker_device(device: str, gpus: float) -> str:
    """`auto` would pick CUDA from the driver's view; on an actor, Ray decides which GPU it sees."""
    if device != "auto":
        return device
    return "cuda" if gpus > 0 else "cpu"


def _check_resources(session: RaySession, opts: RayScoreOptions, say: Callable[[str], None]) -> None:
    need_cpu, need_gpu = opts.workers * opts.cpus_per_worker, opts.workers * opts.gpus_per_worker
    short = []
    if session.cpus < need_cpu:
        short.append(
            f"{need_cpu:g} CPUs ({opts.workers} workers × {opts.cpus_per_worker:g}) but it has {session.cpus:g}"
        )
    if session.gpus < need_gpu:
        short.append(
            f"{need_gpu:g} GPUs ({opts.workers} workers × {opts.gpus_per_worker:g}) but it has {session.gpus:g}"
        )
    if not short:
        return
    message = f"the Ray cluster ({session.address}) is too small: the actor pool needs " + "; ".join(short)
    if session.started_here:
        raise DistributedError(message + ". Lower --workers or --cpus-per-worker / --gpus-per-worker")
    say(f"Warning: {message}; waiting for an autoscaler to add nodes")


@contextlib.contextmanager
def _data_context(show_progress: bool) -> Iterator[Any]:
    """Row order preserved (outputs follow the input), progress bars only when asked; restored after."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    logger = logging.getLogger("ray.data")
    before = (ctx.execution_options.preserve_order, ctx.enable_progress_bars, logger.level)
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = show_progress
    if not os.environ.get("LORAGUARD_DEBUG"):
        # not one INFO line per Dataset execution, nor "no available CPUs, the job will hang" while the
        # actor pool holds them by design (`_check_resources` has said what matters); errors still show
        logger.setLevel(logging.ERROR)
    try:
        yield ctx
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars, level = before
        logger.setLevel(level)


def _blocks(ds: Any, batch_rows: int) -> Any:
    """The input, read in full into the object store and cut into blocks of about `batch_rows` rows.

    Reading first matters: the actor pool holds the CPUs it reserved for the whole run, so read tasks
    queued behind it could never start (on a 2-CPU node with 2 actors the stream deadlocks). Blocks of
    `batch_rows` rows let the batches of a single file spread over every actor.
    """
    ds = ds.materialize()
    rows = ds.count()
    return ds.repartition(max(1, -(-rows // batch_rows))).materialize()


def _run(
    data: str | Path, config: ScorerConfig, opts: RayScoreOptions, scorer_cls: type[BatchScorer], show_progress: bool
) -> Collected:
    import ray.data

    with _data_context(show_progress):
        ds = _blocks(read_dataset(data, config.columns), opts.batch_rows)
        with warnings.catch_warnings():
            # Ray 2.60 deprecates passing remote args like max_restarts as keywords but offers no named
            # parameter for them; its default (-1: restart and retry forever) would hang on a batch that
            # always kills its worker, so they are bounded here.
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*")
            ds = ds.map_batches(
                _bind(scorer_cls, config),
                batch_size=opts.batch_rows,
                batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=opts.workers),
                num_cpus=opts.cpus_per_worker,
                num_gpus=opts.gpus_per_worker or None,
                max_restarts=opts.max_retries,
                max_task_retries=opts.max_retries,
            )
        try:
            return collect_batches(ds.iter_batches(batch_format="pyarrow", batch_size=None), config)
        except LoraguardError:
            raise
        except Exception as exc:
            raise _translate(exc, data, opts) from exc


def _bind(scorer_cls: type[BatchScorer], config: ScorerConfig) -> type[BatchScorer]:
    """`scorer_cls` with `config` built in. Ray Data would put constructor arguments in the object
    store, where a restarted actor may no longer find them (ray-project/ray#53727); a subclass
    carries them in its own definition instead."""

    def __init__(self: BatchScorer) -> None:
        scorer_cls.__init__(self, config)

    return type(scorer_cls.__name__, (scorer_cls,), {"__init__": __init__})


def _translate(exc: BaseException, data: str | Path, opts: RayScoreOptions) -> BaseException:
    """The user-facing error inside a Ray failure: a `LoraguardError` a worker raised (bad rows, a bad
    adapter) as itself, anything else as `DistributedError`.

    Ray Data re-raises a worker's exception as `UserCodeException` whose cause survives only as
    traceback text, so the original is found in the exception chain when it is there, else by its
    standard `loraguard.errors.Name: message` traceback line.
    """
    from loraguard import errors

    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    texts: list[str] = []
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, LoraguardError) and not _is_ray_error(e):
            return e
        texts.append(str(e))
        cause = getattr(e, "cause", None)
        todo.extend([e.__cause__, e.__context__, cause if isinstance(cause, BaseException) else None])
    for text in texts:
        found = _TRACEBACK_LINE.search(text)
        cls = getattr(errors, found.group(1), None) if found else None
        if found and isinstance(cls, type) and issubclass(cls, LoraguardError) and cls is not errors.MissingExtraError:
            return cls(found.group(2).strip())
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DistributedError(
        f"the Ray run on {data} failed: {type(exc).__name__}: {first[:300].rstrip('.')}. Nothing was written. A "
        f"worker that dies is restarted and its batch retried {opts.max_retries} time(s); this one kept failing (out "
        "of memory? try fewer rows per batch with --ray-batch-rows, or more memory per worker), or the cluster "
        "lost its nodes. Set LORAGUARD_DEBUG=1 to see worker logs"
    )


_TRACEBACK_LINE = re.compile(r"^loraguard\.errors\.(\w+): (.+)$", re.MULTILINE)


def _is_ray_error(e: BaseException) -> bool:
    return any(c.__module__.startswith("ray") for c in type(e).__mro__)
