"""`loraguard.load_adapter(model, adapter)`: `PeftModel.from_pretrained`, guarded.

    model = AutoModelForCausalLM.from_pretrained(...)
    model = loraguard.load_adapter(model, "./my-adapter")            # was: PeftModel.from_pretrained(model, ...)
    model = loraguard.load_adapter(model, "./my-adapter", tokenizer=tok, canary=True)

In order, each step only if the previous ones leave no blocking finding (errors; with `strict`,
warnings too) or `on_error="warn"`:

1. the static check (`loraguard.check`) against the live model's own modules and shapes, plus how
   they differ from its config (LG805); no base folder is needed and the model is not touched;
2. PEFT's own load (`guard.attach`: the task's `PeftModel` class, then `load_adapter`), its
   silent outcomes turned into findings: unexpected keys (LG802), missing keys (LG803), target
   names that matched nothing (LG804); a PEFT exception is LG801 and the model is put back;
3. with `canary=True` (and the tokenizer), the probe's measurement on one prompt over a few
   built-in rows, with and without the adapter: no effect (LG601), degenerate answers (LG602),
   NaN/Inf (LG605)... (`guard.canary`).

With blocking findings `on_error="raise"` (the default) raises `AdapterLoadError` carrying them, and
the model passed in is exactly as it was (PEFT's layers removed, the same parameters with the same
`requires_grad`); `on_error="warn"` warns (`AdapterLoadWarning`) and returns the model with the
adapter, except when PEFT itself could not load it (then it raises: there is no model to return).
`guarded_load` returns the whole `LoadReport` instead (its `model` is the `PeftModel`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from loraguard.adapter.source import is_repo_id, resolve_adapter_folder
from loraguard.errors import AdapterLoadError, AdapterLoadWarning, InputError
from loraguard.findings import Finding, sort_findings, verdict_of
from loraguard.guard.attach import attach
from loraguard.guard.canary import CANARY_SAMPLES, run_canary
from loraguard.guard.check import check
from loraguard.guard.live import is_live_model, live_base
from loraguard.guard.render import refusal_message
from loraguard.guard.report import LoadReport
from loraguard.probe.context import ProbeThresholds
from loraguard.probe.load import LoadOutcome, live_model_differs, run_load_rules
from loraguard.probe.run import RowsArg
from loraguard.scoring.prompts import PromptTemplate

__all__ = ["OnError", "guarded_load", "load_adapter"]

OnError = Literal["raise", "warn"]


def load_adapter(
    model: Any,
    adapter: str | Path,
    *,
    adapter_name: str = "default",
    tokenizer: Any = None,
    canary: bool = False,
    canary_rows: RowsArg = None,
    canary_samples: int = CANARY_SAMPLES,
    template: str | Path | PromptTemplate = "chat",
    on_error: OnError = "raise",
    strict: bool = False,
    select: Iterable[str] = (),
    ignore: Iterable[str] = (),
    is_trainable: bool = False,
) -> Any:
    """Load `adapter` (a PEFT folder or a Hub id) onto `model` like `PeftModel.from_pretrained`, guarded.

    Returns the `PeftModel` (a `PeftModel` passed in gets the adapter added under `adapter_name`, as
    with its `load_adapter`; it is not made the active one). See the module docstring for the steps,
    `on_error` and `strict`; `select`/`ignore` take rule-code prefixes, as `check` does. Raises
    `AdapterLoadError` (with `.findings` and `.report`) when the adapter is refused, `InputError` for
    arguments that cannot work (no model, a single file, an adapter name in use).
    """
    report = guarded_load(
        model,
        adapter,
        adapter_name=adapter_name,
        tokenizer=tokenizer,
        canary=canary,
        canary_rows=canary_rows,
        canary_samples=canary_samples,
        template=template,
        on_error=on_error,
        strict=strict,
        select=select,
        ignore=ignore,
        is_trainable=is_trainable,
    )
    if not report.loaded:
        raise AdapterLoadError(
            refusal_message(report), path=report.folder or report.adapter, findings=report.blocking, report=report
        )
    if report.blocking:
        warnings.warn(AdapterLoadWarning(refusal_message(report)), stacklevel=2)
    return report.model


def guarded_load(
    model: Any,
    adapter: str | Path,
    *,
    adapter_name: str = "default",
    tokenizer: Any = None,
    canary: bool = False,
    canary_rows: RowsArg = None,
    canary_samples: int = CANARY_SAMPLES,
    template: str | Path | PromptTemplate = "chat",
    thresholds: ProbeThresholds | None = None,
    on_error: OnError = "raise",
    strict: bool = False,
    select: Iterable[str] = (),
    ignore: Iterable[str] = (),
    is_trainable: bool = False,
) -> LoadReport:
    """`load_adapter`'s steps, returning the `LoadReport` instead of raising or warning on findings.

    With `on_error="raise"` blocking findings refuse the adapter (`loaded` False, the model untouched);
    with `"warn"` the adapter is loaded anyway unless PEFT cannot.
    """
    started = time.perf_counter()
    if on_error not in ("raise", "warn"):
        raise InputError(f"on_error={on_error!r}: expected 'raise' or 'warn'")
    if not is_live_model(model):
        raise InputError(
            f"model of type {type(model).__name__}: pass the model itself (e.g. what "
            "AutoModelForCausalLM.from_pretrained returned); to check against a folder or name use loraguard.check"
        )
    if canary and tokenizer is None:
        raise InputError("canary=True needs the model's tokenizer: pass tokenizer=...")
    select, ignore = tuple(select), tuple(ignore)
    folder = resolve_adapter_folder(adapter)
    live = live_base(model)
    static = check(adapter if is_repo_id(adapter) else folder, live.spec, select=select, ignore=ignore)
    only_live, only_config, reshaped = live.differences()
    compared = LoadOutcome(str(folder), adapter_name, only_live=only_live, only_config=only_config, reshaped=reshaped)
    found = [*static.findings, *_kept(live_model_differs.func(compared), select, ignore)]

    def report(loaded: bool, outcome: LoadOutcome | None = None, **extra: Any) -> LoadReport:
        ordered = sort_findings(found)
        return LoadReport(
            verdict=verdict_of(ordered),
            adapter=str(adapter),
            folder=str(folder),
            adapter_name=adapter_name,
            base=live.spec.name,
            loaded=loaded,
            findings=ordered,
            check=static,
            outcome=outcome,
            strict=strict,
            timing_ms=(time.perf_counter() - started) * 1000,
            **extra,
        )

    refuse = on_error == "raise"
    if refuse and report(False).blocking:
        return report(False)
    attached = attach(model, folder, adapter_name, is_trainable=is_trainable)
    found += _kept(run_load_rules(attached.outcome), select, ignore)
    if attached.model is None:  # PEFT raised; `attach` has put the model back
        return report(False, attached.outcome)
    measured = None
    if canary:
        try:
            measured = run_canary(
                attached.model,
                tokenizer,
                adapter_name,
                folder,
                rows=canary_rows,
                samples=canary_samples,
                template=template,
                thresholds=thresholds,
            )
        except BaseException:
            attached.undo()
            raise
        from loraguard.probe.rules import run_rules

        found += _kept(run_rules(measured), select, ignore)
    if refuse and report(False).blocking:
        attached.undo()
        return report(False, attached.outcome, canary=measured)
    return report(True, attached.outcome, canary=measured, model=attached.model)


def _kept(findings: Iterable[Finding], select: tuple[str, ...], ignore: tuple[str, ...]) -> list[Finding]:
    """`findings` whose code starts with a `select` prefix (all when empty) and no `ignore` prefix."""
    return [f for f in findings if (not select or f.code.startswith(select)) and not f.code.startswith(ignore)]
