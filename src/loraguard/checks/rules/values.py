"""LG4xx: what the tensor values say (read from an mmap, never loaded into a model)."""

from __future__ import annotations

from collections.abc import Iterator

from loraguard.checks.context import CheckContext
from loraguard.codes import rule
from loraguard.findings import Finding, Severity


@rule(
    "LG401",
    "zero-adapter",
    "zero-adapter",
    Severity.ERROR,
    "The adapter is a no-op: zero, empty or absent LoRA tensors",
)
def zero_adapter(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: that some lora_B and some lora_A are non-zero, that LoRA tensors are not
    empty (size 0, as saved under DeepSpeed ZeRO-3) and that a LoRA config comes with LoRA tensors.

    Why it matters: PEFT initialises lora_B to zero, so an adapter saved before training (or
    whose tensors were lost) loads without a word and changes nothing (PEFT issues 286, 1710).

    How to fix: re-save the trained adapter; under ZeRO-3 gather the parameters before saving.
    """
    adapter, cfg = ctx.adapter, ctx.config
    if cfg is None or not cfg.is_lora or adapter.weights_path is None or (adapter.problems and not adapter.tensors):
        return
    if not ctx.lora:
        yield zero_adapter.finding(
            f"{adapter.weights_path.name} holds no LoRA tensors ({len(adapter.tensors)} other tensors): "
            "the adapter changes nothing.",
            fix="Re-save the trained adapter.",
            tensors=len(adapter.tensors),
        )
        return
    if all(t.shape and 0 in t.shape for t in ctx.lora):
        yield zero_adapter.finding(
            f"all {len(ctx.lora)} LoRA tensors are empty (shape with 0, as saved under DeepSpeed ZeRO-3).",
            fix="Gather parameters before saving (ZeRO-3: stage3_gather_16bit_weights_on_model_save).",
            empty=len(ctx.lora),
        )
        return
    stats = adapter.stats
    if not stats:
        return
    for side in ("B", "A"):
        parts = [t for t in ctx.lora if t.part in (f"lora_{side}", f"lora_embedding_{side}") and t.param == "weight"]
        scanned = [t for t in parts if t.key in stats]
        if scanned and all(stats[t.key].all_zero for t in scanned):
            yield zero_adapter.finding(
                f"every lora_{side} tensor ({len(scanned)}) is exactly zero: the adapter is a no-op "
                + ("(PEFT's initial state: saved before training?)." if side == "B" else "."),
                fix="Re-save the adapter after training.",
                side=side,
                tensors=len(scanned),
            )
            return


@rule("LG402", "non-finite-weights", "non-finite-weights", Severity.ERROR, "NaN or Inf in a tensor")
def non_finite_weights(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: every float tensor for NaN or ±Inf values.

    Why it matters: one NaN in a LoRA matrix makes every output of that layer NaN; scores become
    NaN or (after a clamp or a parser's fallback) a constant.

    How to fix: re-train from a checkpoint before the divergence (lower the learning rate, use
    bf16 rather than fp16).
    """
    stats = ctx.adapter.stats or {}
    bad = {k: s.non_finite for k, s in stats.items() if s.non_finite}
    if bad:
        first = sorted(bad)[0]
        yield non_finite_weights.finding(
            f"{sum(bad.values())} NaN/Inf value(s) in {len(bad)} tensor(s), e.g. {first}.",
            fix="Re-train from a checkpoint before the divergence.",
            tensors=sorted(bad)[:5],
            count=sum(bad.values()),
        )
