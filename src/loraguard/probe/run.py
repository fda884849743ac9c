"""`probe(adapter, base)`: the static check first, then the model with and without the adapter."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from loraguard.errors import InputError
from loraguard.findings import sort_findings, verdict_of
from loraguard.probe.context import ProbeThresholds
from loraguard.probe.report import ProbeReport, differential
from loraguard.scoring.data import RowSet, load_rows, rows_from_records
from loraguard.scoring.progress import ProgressSink
from loraguard.scoring.prompts import PromptTemplate, get_template

__all__ = ["DEFAULT_SAMPLES", "probe", "sample_rows"]

DEFAULT_SAMPLES = 16
METHODS = ("logits", "generate")
RowsArg = RowSet | str | Path | Iterable[Mapping[str, Any]] | None


def sample_rows(rows: RowsArg = None, samples: int = DEFAULT_SAMPLES) -> tuple[RowSet, str]:
    """The first `samples` rows (validated like a CSV) and where they came from (`builtin` or a path).

    `rows`: None (the built-in rows), a Jigsaw-format CSV path, a `RowSet` or in-memory records.
    """
    if samples < 1:
        raise InputError(f"samples {samples}: must be at least 1")
    if rows is None:
        from loraguard.scoring.builtin_rows import builtin_rows

        data, source = rows_from_records(builtin_rows(), source="builtin"), "builtin"
    elif isinstance(rows, str | Path):
        data = load_rows(rows, limit=samples)  # reads only the rows it samples, whatever the file's size
        source = str(rows)
    elif isinstance(rows, RowSet):
        data, source = rows, rows.source
    else:
        data = rows_from_records(rows)
        source = data.source
    if len(data) > samples:
        data = rows_from_records([dict(r) for r in data.rows[:samples]], source=data.source)
    return data, source


def probe(
    adapter: str | Path,
    base: str | Path,
    *,
    rows: RowsArg = None,
    samples: int = DEFAULT_SAMPLES,
    method: str = "logits",
    force: bool = False,
    template: str | Path | PromptTemplate = "chat",
    batch_size: int = 8,
    device: str = "auto",
    dtype: str = "auto",
    thresholds: ProbeThresholds | None = None,
    progress: ProgressSink | None = None,
) -> ProbeReport:
    """Load `base` and `adapter` (local folders) and run `samples` rows with and without the adapter.

    Runs `loraguard.check(adapter, base)` first and stops on its errors unless `force`. The report's
    findings are the static check's plus the LG6xx probe rules'; `blame` says whether the adapter
    (`adapter`) or the base, prompt or method (`base-or-prompt`) is the problem. Bad input (rows,
    method, a folder that cannot be loaded) raises `LoraguardError`. `progress` (e.g. the CLI's rich
    bar) is told of every forward pass once the model is loaded.
    """
    from loraguard.checks.checker import check

    started = time.perf_counter()
    if method not in METHODS:
        raise InputError(f"method {method!r}: expected one of {', '.join(METHODS)}")
    if batch_size < 1:
        raise InputError(f"batch size {batch_size}: must be at least 1")
    tpl = get_template(template)
    data, source = sample_rows(rows, samples)
    static = check(adapter, base)
    common: dict[str, Any] = {
        "adapter": str(adapter),
        "base": str(base),
        "method": method,
        "template": tpl.name,
        "data": source,
        "samples": len(data),
        "check": static,
    }
    if static.errors and not force:
        return ProbeReport(
            verdict=verdict_of(static.findings),
            findings=static.findings,
            stopped=True,
            blame=None,
            differential=(
                f"stopped after the static check's {len(static.errors)} error(s): fix them, or rerun "
                "with --force to probe anyway"
            ),
            timing_ms=(time.perf_counter() - started) * 1000,
            **common,
        )

    from loraguard.probe.measure import measure
    from loraguard.probe.rules import run_rules
    from loraguard.scoring.host import load_host
    from loraguard.scoring.model import auto_dtype_reason

    host = load_host(base, [adapter], dtype=dtype, device=device)
    ctx = measure(
        host,
        host.adapter_names[0],
        data,
        method=method,
        template=tpl,
        batch_size=batch_size,
        thresholds=thresholds,
        progress=progress,
    )
    found = run_rules(ctx)
    findings = sort_findings([*static.findings, *found])
    blame, words = differential(ctx, found)
    return ProbeReport(
        verdict=verdict_of(findings),
        findings=findings,
        stopped=False,
        blame=blame,
        differential=words,
        context=ctx,
        timing_ms=(time.perf_counter() - started) * 1000,
        dtype=auto_dtype_reason(host.device, host.dtype) if dtype == "auto" else host.dtype,
        **common,
    )
