"""`admit`: the registry's admission use-case: check (and optionally probe) an adapter, then store it.

The store (`Registry`) only stores; deciding whether an adapter may enter is this module's job:

    from loraguard.registry import Registry, admit
    with Registry() as reg:
        entry = admit(reg, "toxicity", "./adapters/toxicity", base="./bases/qwen")  # a shadow candidate
        reg.promote(entry.ref)

Any error finding raises `AdapterRejectedError` (carrying the report) and writes nothing, unless
`force` with a `reason`. SQLAlchemy, the checker and (for `probe_data`) torch load only when used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loraguard.adapter.source import resolve_adapter_folder
from loraguard.errors import AdapterRejectedError, InputError
from loraguard.registry.hashing import hash_files
from loraguard.registry.model import Entry
from loraguard.registry.validate import normalize_base, validate_name, validate_tags

if TYPE_CHECKING:
    from loraguard.registry.store import Registry

__all__ = ["CheckFn", "admit"]

CheckFn = Callable[..., Any]
"""`check(adapter, base)` / `probe(adapter, base, rows=...)`: anything returning a report with `errors`
and `to_dict()`."""


def admit(
    registry: Registry,
    name: str,
    path: str | Path,
    *,
    base: str,
    task: str | None = None,
    probe_data: str | Path | None = None,
    force: bool = False,
    reason: str | None = None,
    tags: Sequence[str] = (),
    actor: str | None = None,
    check_fn: CheckFn | None = None,
    probe_fn: CheckFn | None = None,
) -> Entry:
    """Check (and with `probe_data`, probe) the adapter at `path` on `base`, then register it in `registry`.

    `path` is a local folder or a Hub id (its snapshot is hashed). Any error finding raises
    `AdapterRejectedError` (carrying the report) and writes nothing, unless `force` with a `reason`.
    The new entry is version max+1 of `name`, a candidate at weight 0 (shadow).
    """
    validate_name(name)
    reason = reason.strip() if reason else None
    if force and not reason:
        raise InputError("--force needs --reason: say why this adapter is registered despite its errors")
    validate_tags(tags)
    base_norm = normalize_base(base)
    folder = resolve_adapter_folder(path)
    files = hash_files(folder)
    if not files:
        raise InputError(f"{folder}: the folder is empty: nothing to register", path=folder)
    if check_fn is None:
        from loraguard.checks.checker import check

        check_fn = check
    check_report = check_fn(str(folder), base_norm)
    probe_report = None
    if probe_data is not None and (force or not check_report.errors):
        if not Path(base_norm).is_dir():
            raise InputError(f"--probe needs a local base folder with weights; {base!r} is not one")
        if probe_fn is None:
            from loraguard.probe import probe

            probe_fn = probe
        probe_report = probe_fn(str(folder), base_norm, rows=probe_data)
    failing = check_report if check_report.errors or probe_report is None else probe_report
    errors = tuple(failing.errors)
    if errors and not force:
        codes = ", ".join(dict.fromkeys(f"{f.code} {f.category}" for f in errors))
        stage = "check" if failing is check_report else "probe"
        raise AdapterRejectedError(
            f"{name}: {stage} found {len(errors)} error(s) ({codes}); nothing was registered. Fix the adapter, "
            "or register it anyway with --force --reason '...'",
            path=folder,
            report=failing,
        )
    check_dict = _report_dict(check_report)
    return registry.insert(
        name,
        source=str(path),
        path=str(folder),
        files=files,
        base=base_norm,
        task=task or str((check_dict.get("adapter") or {}).get("task_type") or "CAUSAL_LM"),
        check_report=check_dict,
        probe_report=_report_dict(probe_report) if probe_report is not None else None,
        forced=[f.code for f in errors],
        reason=reason,
        tags=tags,
        actor=actor,
    )


def _report_dict(report: Any) -> Mapping[str, Any]:
    data: Mapping[str, Any] = report.to_dict() if hasattr(report, "to_dict") else dict(report)
    return data
