"""The canary: one prompt, a few rows, the model with and without the freshly loaded adapter.

It is the probe's one-row measurement (`loraguard.probe.measure`, batch check off) on a host around
the user's `PeftModel`, judged by the probe's rules (LG601 no effect, LG602 degenerate output with
the monitor's `degenerate` thresholds, LG603 low spread, LG605 NaN/Inf, LG607 small effect): one
prompt template (the chat template asking the built-in rows' question, by default) over
`samples` rows, so that "constant answers" can be told from "one answer". Switching adapters for
the measurement changes the model's active adapter and `requires_grad` flags; they are put back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loraguard.errors import InputError
from loraguard.guard.live import task_of_class
from loraguard.guard.snapshot import ModelSnapshot
from loraguard.probe.context import ProbeContext, ProbeThresholds
from loraguard.probe.run import RowsArg, sample_rows
from loraguard.scoring.prompts import PromptTemplate

__all__ = ["CANARY_SAMPLES", "run_canary"]

CANARY_SAMPLES = 8
"""Rows the canary runs by default: the monitor's `degenerate` rule needs 8 to count distinct answers."""


def run_canary(
    peft_model: Any,
    tokenizer: Any,
    adapter_name: str,
    folder: str | Path,
    *,
    rows: RowsArg = None,
    samples: int = CANARY_SAMPLES,
    template: str | Path | PromptTemplate = "chat",
    thresholds: ProbeThresholds | None = None,
) -> ProbeContext:
    """Measure adapter `adapter_name` of `peft_model` on `samples` rows (see the module docstring)."""
    if tokenizer is None:
        raise InputError(
            "the canary needs the model's tokenizer: load_adapter(model, adapter, tokenizer=tokenizer, canary=True)"
        )
    inner = peft_model.get_base_model()
    if task_of_class(type(inner).__name__) != "CAUSAL_LM":
        raise InputError(
            f"the canary reads next-token logits: {type(inner).__name__} is not a causal LM; load without canary=True"
        )
    from loraguard.probe.measure import measure
    from loraguard.scoring.host import AdapterHost

    data, _ = sample_rows(rows, samples)
    host = AdapterHost.around(peft_model, tokenizer, {adapter_name: folder})
    snapshot = ModelSnapshot.take(peft_model)
    try:
        return measure(host, adapter_name, data, template=template, batch_size=1, thresholds=thresholds)
    finally:
        snapshot.restore()
