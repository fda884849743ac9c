"""`score_distributed`: `score_file` on a Ray cluster, with Ray Data and an actor pool of scorers.

The data is read with Ray Data (CSV or Parquet by suffix), cut into blocks of `batch_rows` rows and
fed to `workers` `BatchScorer` actors (`map_batches` with a fixed `ActorPoolStrategy`); each actor
loads the base and its adapters once and scores every batch it gets with each adapter. The driver
collects the rows in input order (`preserve_order`) and keeps every guarantee of `score_file`:

- validation: each batch is checked by `rows_from_records`; duplicate `row_id`s across batches and a
  label column filled in some rows only are caught on the driver, before anything is written;
- the same probabilities up to float rounding (batches group rows differently, so padding and the
  prefix cache see other neighbours: differences stay below 1e-5);
- the monitor: each batch's own `Monitor` per run travels with its rows and the driver merges them
  (`Monitor.merge`), so the summary and `.alerts()` equal a single-process monitor's, retries included;
- AUCs with labels; one output per run (`stem.<adapter>.suffix`), CSV or Parquet by suffix, written
  atomically by the driver and never over an existing file without `overwrite`.

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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loraguard.distributed.cluster import RaySession, import_ray, ray_session
from loraguard.distributed.collect import Collected, build_report, collect_batches, worker_counts, worker_seconds
from loraguard.distributed.io import read_columns, read_dataset
from loraguard.distributed.worker import BatchScorer, ScorerConfig
from loraguard.errors import DistributedError, InputError, LoraguardError

__all__ = ["DistributedScoreReport", "RayScoreOptions", "score_distributed"]


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
class DistributedScoreReport:
    """A `FileScoreReport` (printed and serialised like `score_file`'s) plus how the cluster ran it."""

    report: Any
    """The `loraguard.scoring.FileScoreReport`."""
    rules: tuple[str, ...]
    labels: Any
    """0/1 per row (numpy int8) or None."""
    session: RaySession
    workers: int
    batches: int
    batches_per_worker: dict[str, int]
    """Batches returned per actor process (`host:pid`; a restarted actor is a new process)."""
    worker_seconds: dict[str, float]
    """Seconds each actor process spent in `score_rows`: the steady-state cost, without start-up."""
    wall_s: float
    """From the first Ray call to the last row collected (connection excluded: see `session.startup_s`)."""

    @property
    def any_degenerate(self) -> bool:
        return bool(self.report.any_degenerate)


def score_distributed(
    data: str | Path,
    base: str | Path,
    adapters: Sequence[str | Path] = (),
    *,
    out: str | Path,
    ray: RayScoreOptions | None = None,
    overwrite: bool = False,
    template: str | Path = "chat",
    method: str = "logits",
    answers: str | Sequence[str] = ("Yes", "No"),
    batch_size: int = 8,
    prefix_cache: bool = True,
    max_new_tokens: int = 10,
    dtype: str = "auto",
    device: str = "auto",
    dump_prompts_to: str | Path | None = None,
    metrics_json: str | Path | None = None,
    time_budget: float | str | None = None,
    show_progress: bool = False,
    log: Callable[[str], None] | None = None,
    scorer_cls: type[BatchScorer] = BatchScorer,
) -> DistributedScoreReport:
    """Score `data` (CSV or Parquet) like `score_file`, on Ray; see the module docstring.

    Inputs and outputs are checked before Ray starts. `scorer_cls` replaces the actor class (a
    subclass of `BatchScorer`, e.g. to add instrumentation or, in tests, to inject faults).
    """
    from loraguard.scoring.filescore import check_score_args

    opts = ray or RayScoreOptions()
    opts.validate()
    say = log or (lambda _msg: None)
    if time_budget is not None:
        raise InputError(
            "--time-budget is not supported with --ray: a cluster scores every batch at once, so "
            "there is no early projection to stop on; size --workers instead"
        )
    import_ray()
    columns = read_columns(data)
    answer_words, names, paths = check_score_args(
        adapters,
        out=out,
        overwrite=overwrite,
        template=template,
        method=method,
        answers=answers,
        batch_size=batch_size,
        extra_outputs=(dump_prompts_to, metrics_json),
    )
    _check_model_paths(base, adapters)
    template_arg = str(Path(template).resolve()) if Path(str(template)).is_file() else str(template)
    config = ScorerConfig(
        base=str(Path(base).resolve()),
        adapters=tuple(_for_workers(a) for a in adapters),
        names=tuple(names),
        columns=columns,
        source=str(data),
        template=template_arg,
        method=method,
        answers=answer_words,
        batch_size=batch_size,
        prefix_cache=prefix_cache,
        max_new_tokens=max_new_tokens,
        dtype=dtype,
        device=_worker_device(device, opts.gpus_per_worker),
        threads=max(1, int(opts.cpus_per_worker)),
        want_prompts=dump_prompts_to is not None,
    )

    with ray_session(opts.address, num_cpus=opts.num_cpus, temp_dir=opts.temp_dir) as session:
        _check_resources(session, opts, say)
        started = time.perf_counter()
        collected = _run(data, config, opts, scorer_cls, show_progress)
        wall = time.perf_counter() - started
    report = build_report(
        collected,
        data=data,
        base=base,
        adapters=adapters,
        names=names,
        paths=paths,
        method=method,
        wall_s=wall,
        overwrite=overwrite,
        dump_prompts_to=dump_prompts_to,
        metrics_json=metrics_json,
        say=say,
    )
    return DistributedScoreReport(
        report=report,
        rules=collected.rules,
        labels=collected.labels,
        session=session,
        workers=opts.workers,
        batches=len(collected.infos),
        batches_per_worker=dict(worker_counts(collected.infos)),
        worker_seconds=dict(worker_seconds(collected.infos)),
        wall_s=wall,
    )


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
