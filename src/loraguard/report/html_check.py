"""`check --html`: a self-contained page with the verdict, the findings and a weight-norm heatmap.

The heatmap has one row per layer and one column per adapted module type (`self_attn.q_proj`...),
coloured by ‖B‖·‖A‖ on a log scale. Layers without tensors are rows of empty (missing) cells, layers
the base does not have are flagged in red, zero and NaN/Inf modules get their own marks, and a module
far from the others of its column (a robust outlier) gets a thick outline. The numbers come from
`check(..., norms=True)`; a report without them says so instead of drawing an empty chart.
"""

from __future__ import annotations

import math
import os
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from loraguard.checks.report import CheckReport, ModuleNorm
from loraguard.engines import engine_verdicts
from loraguard.findings import Finding, Severity
from loraguard.report.html import Raw, badge, esc, facts, page, section, table, write_html
from loraguard.report.svg import HeatCell, heatmap_svg, small_multiples

__all__ = ["check_sections", "findings_section", "heatmap_grid", "render_check_html", "write_check_html"]

_ORDER = (
    "q_proj",
    "k_proj",
    "v_proj",
    "qkv_proj",
    "query",
    "key",
    "value",
    "query_key_value",
    "c_attn",
    "q",
    "k",
    "v",
    "o_proj",
    "out_proj",
    "dense",
    "o",
    "c_proj",
    "gate_proj",
    "w1",
    "up_proj",
    "gate_up_proj",
    "fc1",
    "c_fc",
    "w3",
    "down_proj",
    "fc2",
    "w2",
)


def write_check_html(report: CheckReport, path: str | os.PathLike[str]) -> Path:
    """Write the HTML report of `report` to `path` (atomically); returns the path."""
    return write_html(path, render_check_html(report))


def render_check_html(report: CheckReport) -> str:
    """The complete HTML document for one `CheckReport`."""
    a, b = report.adapter, report.base
    name = str(a.get("name") or a.get("ref") or "adapter")
    on = f" on {b['name']}" if b else ""
    heading = Raw(f"{badge(report.verdict.value)} {esc(name)}{esc(on)}")
    counts = f"{len(report.errors)} error(s), {len(report.warnings)} warning(s), {report.timing_ms:.0f} ms"
    return page(
        f"loraguard check: {report.verdict.value.upper()} {name}",
        *check_sections(report),
        heading=heading,
        subtitle=f"{a.get('ref')} · {counts}",
    )


def check_sections(report: CheckReport) -> list[Raw]:
    """The report's sections (summary, heatmap, findings, norm distribution), for a page or a notebook."""
    return [
        _summary(report),
        _heatmap_section(report),
        findings_section(report.findings),
        _distribution_section(report),
    ]


def _summary(report: CheckReport) -> Raw:
    a, b = report.adapter, report.base
    ranks = a.get("tensor_ranks")
    targets = a.get("target_modules")
    items: list[tuple[str, object]] = [
        ("adapter", a.get("ref")),
        ("claimed base", a.get("claimed_base") or "?"),
        ("PEFT type / task", f"{a.get('peft_type')} / {a.get('task_type')}"),
        ("rank", f"r={a.get('r')}, tensor ranks {ranks}"),
        ("targets", ", ".join(targets) if isinstance(targets, list) else targets),
        (
            "tensors",
            f"{a.get('tensors')} tensors, {a.get('lora_modules')} LoRA modules, "
            f"{a.get('format') or 'no weights'}, {a.get('size_bytes') or 0:,} bytes",
        ),
    ]
    if b:
        items.append(
            (
                "base",
                f"{b['name']}: {b['architecture']}, {b['num_layers']} layers, hidden "
                f"{b['hidden_size']}, vocab {b['vocab_size']}, {b['params_b']}B params ({b['source']})",
            )
        )
    else:
        items.append(("base", "unknown (none given and the claimed base could not be resolved offline)"))
    served = [e for e in report.engines if e != "peft"]
    if served:
        said: dict[str, str] = dict(engine_verdicts(report))
        items.append(("serving engines", ", ".join(f"{e}: {said.get(e, '?')}" for e in served)))
    fits = ", ".join(i.name for i in report.inferred_bases[:6])
    items.append(("tensors fit", fits or ("no catalog model" if a.get("lora_modules") else None)))
    return section("Summary", facts(items))


def findings_section(findings: Sequence[Finding]) -> Raw:
    """The findings table (severity, code, category, message with its fix), errors first as given."""
    if not findings:
        return section("Findings", Raw('<p class="note">No findings.</p>'))
    rows, classes = [], []
    for f in findings:
        body = Raw(esc(f.message) + (f'<div class="fix">→ {esc(f.fix)}</div>' if f.fix else ""))
        rows.append((f.severity.value, f.code, f.category, body))
        classes.append((0, f"sev-{f.severity.value}"))
    by_sev = {s: sum(1 for f in findings if f.severity is s) for s in Severity}
    note = ", ".join(f"{n} {s.value}" for s, n in by_sev.items() if n)
    return section(
        "Findings", table(("severity", "code", "category", "finding / fix"), rows, cell_class=classes), note=note
    )


def heatmap_grid(
    norms: Sequence[ModuleNorm], base_layers: int | None = None
) -> tuple[list[str], list[str], dict[tuple[int, int], HeatCell], dict[int, str]]:
    """Rows (layers), columns (module types), cells and row notes of the weight-norm heatmap.

    Rows run from layer 0 to the last layer of the base or of the adapter, whichever is larger, so
    that layers without tensors show as missing cells; layers at or beyond `base_layers` get a note.
    Modules of several stacks (T5's encoder and decoder) get the stack's name as a column prefix.
    """
    layered = [n for n in norms if n.layer is not None]
    col_of = _column_names(layered)
    columns = sorted(set(col_of.values()), key=_column_order)
    if not layered:
        return [], columns, {}, {}
    last = max(n.layer for n in layered if n.layer is not None)
    if base_layers:
        last = max(last, base_layers - 1)
    rows = [f"layer {i}" for i in range(last + 1)]
    index = {c: i for i, c in enumerate(columns)}
    cells: dict[tuple[int, int], HeatCell] = {}
    for n in layered:
        assert n.layer is not None
        state = " — ZERO" if n.zero else (" — NaN/Inf" if n.non_finite else "")
        value = n.norm if math.isfinite(n.norm) else 0.0
        cells[(n.layer, index[col_of[id(n)]])] = HeatCell(
            value, zero=n.zero, non_finite=n.non_finite, title=f"{n.module}: ‖B‖·‖A‖ = {n.norm:.4g}{state}"
        )
    notes = {}
    if base_layers:
        for i in range(base_layers, last + 1):
            notes[i] = f"layer {i}: the base has {base_layers} layers (0–{base_layers - 1}); PEFT drops these tensors"
    return rows, columns, cells, notes


def _column_names(norms: Sequence[ModuleNorm]) -> dict[int, str]:
    """`id(norm)` → its column: the relative name, prefixed by the stack when there are several."""
    stacks = {_stack(n) for n in norms}
    return {id(n): (f"{_stack(n)}:{n.relative}" if len(stacks) > 1 else n.relative) for n in norms}


def _stack(norm: ModuleNorm) -> str:
    head = norm.module[: -len(norm.relative) - 1] if norm.module.endswith(norm.relative) else norm.module
    parts = re.sub(r"\.\d+$", "", head).split(".")
    parts = [p for p in parts[:-1] if p not in ("model", "base_model")] or parts[-1:]
    return parts[-1] if parts else ""


def _column_order(column: str) -> tuple[str, int, str]:
    stack, _, relative = column.rpartition(":")
    leaf = relative.rsplit(".", 1)[-1]
    return stack, _ORDER.index(leaf) if leaf in _ORDER else len(_ORDER), relative


def _heatmap_section(report: CheckReport) -> Raw:
    title = "Adapter weight norm per layer × module (‖B‖·‖A‖)"
    norms = report.module_norms
    if not norms:
        why = (
            "the report was made without norms: run `loraguard check --html` or check(..., norms=True)"
            if report.adapter.get("lora_modules")
            else "the adapter has no readable LoRA tensors"
        )
        return section(title, Raw(f'<p class="note">No weight norms: {esc(why)}.</p>'))
    base_layers = report.base.get("num_layers") if report.base else None
    rows, cols, cells, notes = heatmap_grid(norms, base_layers if isinstance(base_layers, int) else None)
    parts: list[str] = []
    if rows:
        flag = f"← layers {base_layers}+ are not in the base: PEFT drops them" if notes else ""
        parts.append(Raw(heatmap_svg(rows, cols, cells, value_label="‖B‖·‖A‖", row_notes=notes, flag_label=flag)))
    counts = (sum(n.zero for n in norms), sum(n.non_finite for n in norms), len(rows) * len(cols) - len(cells))
    note = (
        f"{len(norms)} modules; {counts[0]} zero, {counts[1]} with NaN/Inf, {counts[2]} missing cell(s)"
        + (f"; {len(notes)} layer(s) beyond the base's {base_layers}" if notes else "")
        + ". ‖B‖_F·‖A‖_F bounds ‖B·A‖_F from above (equal for rank 1). Hover a cell for its module."
    )
    other = [n for n in norms if n.layer is None]
    if other:
        parts.append(
            table(
                ("module (not in a layer)", "‖B‖·‖A‖", "state"),
                [(n.module, f"{n.norm:.4g}", "zero" if n.zero else ("NaN/Inf" if n.non_finite else "")) for n in other],
                numeric=(1,),
            )
        )
    return section(title, *parts, note=note)


def _distribution_section(report: CheckReport) -> Raw:
    groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"log10 ‖B‖·‖A‖": []})
    layered = [n for n in report.module_norms if n.layer is not None]
    col_of = _column_names(layered)
    for n in layered:
        if n.norm > 0 and math.isfinite(n.norm) and not n.zero and not n.non_finite:
            groups[col_of[id(n)]]["log10 ‖B‖·‖A‖"].append(math.log10(n.norm))
    if max((len(g["log10 ‖B‖·‖A‖"]) for g in groups.values()), default=0) < 4:
        return Raw("")  # too few layers for a distribution to say anything
    ordered = dict(sorted(groups.items(), key=lambda kv: _column_order(kv[0])))
    return section(
        "Norm distribution per module type",
        Raw(small_multiples(ordered, bins=16, value_range=None)),
        note="log10 of ‖B‖·‖A‖ across layers, one chart per module type (zero and NaN/Inf modules left out).",
    )
