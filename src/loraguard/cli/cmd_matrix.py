"""`loraguard matrix`: check every adapter below some paths against every base, one CSV row per pair."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from loraguard.matrix import MatrixExecutor
    from loraguard.matrix.local import ExecutorKind

from loraguard.cli.options import format_option
from loraguard.report.matrix_formatter import MatrixFormatter


def register(app: typer.Typer) -> None:
    """Add the `matrix` command to `app`."""
    app.command(
        "matrix",
        help="Find every adapter below PATHS (folders with adapter_config.json, weights files named directly, "
        "and with --hub-cache the local Hugging Face cache), check each against every --base in parallel and "
        "write one CSV row per adapter × base. A check that cannot run is an `error` row, never a crash. "
        "Exit 0 when the matrix completed (whatever the verdicts), 2 on bad input. With --ray the checks run as Ray "
        "tasks on a cluster (the ray extra; paths must be readable on every node).",
        epilog="Examples: loraguard matrix ./adapters --base Qwen/Qwen2.5-1.5B-Instruct --base ./bases/llama "
        "--out matrix.csv --html matrix.html ; loraguard matrix --hub-cache --base ./base --out m.csv --header-only ; "
        "loraguard matrix /shared/adapters --base ./base --out m.csv --ray-address auto",
    )(matrix_command)


def matrix_command(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Adapter folders, weights files or folders to search.")
    ] = None,
    base: Annotated[
        list[str] | None,
        typer.Option(
            "--base",
            "-b",
            help="Base to check against (repeatable): folder with config.json, catalog name or Hub id. "
            "Default: each adapter's claimed base.",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="CSV to write (required).")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Also write a self-contained HTML report here.")] = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs", "-j", min=1, help="Parallel workers (ignored with --ray: one task per free CPU of the cluster)."
        ),
    ] = 2,
    header_only: Annotated[
        bool,
        typer.Option(
            "--header-only", help="Skip the value scans (zero/NaN/Inf): headers and configs only, much faster."
        ),
    ] = False,
    hub_cache: Annotated[
        bool, typer.Option("--hub-cache", help="Also check adapters in the local Hugging Face cache (HF_HUB_CACHE).")
    ] = False,
    engine: Annotated[
        list[str] | None,
        typer.Option(
            "--engine", help="Serving-engine profile to judge too (repeatable); one `engine:<name>` column each."
        ),
    ] = None,
    executor: Annotated[
        str,
        typer.Option(
            "--executor", help="auto (processes when --jobs > 1), process, thread or serial (ignored with --ray)."
        ),
    ] = "auto",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out file.")] = False,
    fmt: str = format_option(MatrixFormatter),
    use_ray: Annotated[
        bool,
        typer.Option(
            "--ray",
            help="Run the checks as Ray tasks (needs the ray extra): a local Ray instance, or RAY_ADDRESS "
            "when that is set. A task whose worker dies is retried; a cell that keeps killing it is an error row.",
        ),
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            metavar="ADDRESS",
            help="Ray cluster to use (implies --ray): auto (this machine is a "
            "cluster node), HOST:6379, ray://HOST:10001 (Ray Client) or local.",
        ),
    ] = None,
) -> int:
    from loraguard.errors import InputError, OutputExistsError
    from loraguard.matrix import run_matrix, write_csv

    if out is None:
        raise InputError("--out is required: the CSV file to write (e.g. --out matrix.csv)")
    if not paths and not hub_cache:
        raise InputError("no adapters to check: pass adapter folders or files, or --hub-cache")
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} already exists: pass --overwrite to replace it", path=out)
    for target in (out, html):
        if target is not None and not target.parent.is_dir():
            raise InputError(f"{target.parent}: no such folder for {target.name}", path=target)
    kinds: dict[str, ExecutorKind] = {"auto": "auto", "process": "process", "thread": "thread", "serial": "serial"}
    if executor not in kinds:
        raise InputError(f"--executor {executor!r}: use auto, process, thread or serial")
    bases = list(dict.fromkeys(base or []))
    _validate_bases(bases)
    engines = list(dict.fromkeys(engine or []))
    if engines:
        from loraguard.engines import normalize_engines

        engines = list(normalize_engines(engines))  # an unknown engine: InputError, exit 2
    chosen: ExecutorKind | MatrixExecutor = kinds[executor]
    if use_ray or ray_address is not None:
        from loraguard.distributed.matrix import RayMatrixExecutor

        chosen = RayMatrixExecutor(address=ray_address)
    result = run_matrix(
        paths or [], bases, jobs=jobs, header_only=header_only, hub_cache=hub_cache, engines=engines, executor=chosen
    )
    if not result.adapters:
        raise InputError(
            "no adapter found below "
            + (", ".join(str(p) for p in paths or []) or "the Hub cache")
            + ": an adapter is a folder holding adapter_config.json"
        )
    write_csv(result, out, overwrite=overwrite)
    if html is not None:
        from loraguard.report.html_matrix import write_matrix_html

        write_matrix_html(result, html)
    sys.stdout.write(MatrixFormatter(csv=out, html=html).render(result, fmt))
    return 0


def _validate_bases(bases: list[str]) -> None:
    """Resolve each base once up front so a typo fails the run (exit 2) instead of every row."""
    from loraguard.basemodel.resolve import resolve_base
    from loraguard.errors import HubUnavailableError, InputError

    for name in bases:
        try:
            resolve_base(name)
        except (InputError, HubUnavailableError) as exc:
            raise InputError(f"--base {name}: {exc}") from exc
