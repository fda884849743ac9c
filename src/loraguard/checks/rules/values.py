"""LG4xx: what the tensor values say (read from an mmap, never loaded into a model)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from loraguard.adapter.keys import AdapterTensor
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
    Zero LoRA matrices are an error only when nothing else in the file changes the output: with a
    non-zero `lora_B.bias` (`lora_bias=True`) or saved `modules_to_save` weights, LG403 says which
    part is zero and which is not.

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
    zero = _zero_side(ctx)
    if zero is None or _live_parts(ctx):
        return  # LG403 reports zero matrices beside parts that still change the output
    side, tensors = zero
    yield zero_adapter.finding(
        f"every lora_{side} tensor ({tensors}) is exactly zero and nothing else in the file changes the output: "
        "the adapter is a no-op " + ("(PEFT's initial state: saved before training?)." if side == "B" else "."),
        fix="Re-save the adapter after training.",
        side=side,
        tensors=tensors,
    )


@rule(
    "LG403",
    "zero-lora-matrices",
    "zero-adapter",
    Severity.WARNING,
    "Every LoRA matrix product is zero; only biases or saved modules change the output",
)
def zero_lora_matrices(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: every lora_B (or every lora_A) is exactly zero, so the LoRA updates B·A are
    zero, while other parts of the file still change the output: non-zero `lora_B.bias` tensors
    (`lora_bias=True`) or weights saved through `modules_to_save` (a classification head, an
    `lm_head`), which replace the base's modules. The message names which part is zero and which is not.

    Why it matters: the adapter is not a no-op (so not LG401's error), but its low-rank part was
    never trained or was lost: it works only through its biases or saved modules. That is what a
    head-only fine-tune looks like, and also what a LoRA saved before training looks like next to
    a freshly initialised head.

    How to fix: if the LoRA matrices were meant to be trained, re-save the adapter after training;
    if only the bias or the head was trained, nothing.
    """
    if ctx.config is None or not ctx.config.is_lora or not ctx.lora:
        return
    zero = _zero_side(ctx)
    live = _live_parts(ctx)
    if zero is None or not live:
        return
    side, tensors = zero
    bias = [t.module for t in live if t.is_lora]
    saved = sorted({t.module for t in live if not t.is_lora})
    parts = []
    if bias:
        parts.append(f"{len(bias)} non-zero lora_B.bias tensor(s) (lora_bias), e.g. {bias[0]}")
    if saved:
        parts.append(f"the saved modules_to_save weights of {', '.join(saved[:4])}{' ...' if len(saved) > 4 else ''}")
    yield zero_lora_matrices.finding(
        f"every lora_{side} weight ({tensors}) is exactly zero, so the LoRA matrices change nothing; the adapter "
        f"still changes the output through {' and '.join(parts)}.",
        fix="If the LoRA matrices were meant to be trained, re-save the adapter after training; if only the "
        "bias or head was trained, nothing to do.",
        side=side,
        zero_tensors=tensors,
        nonzero_bias=len(bias),
        saved_modules=saved,
    )


def _zero_side(ctx: CheckContext) -> tuple[str, int] | None:
    """("B", n) when every scanned lora_B weight is exactly zero (else "A" for lora_A), else None."""
    stats = ctx.adapter.stats
    if not stats:
        return None
    for side in ("B", "A"):
        parts = [t for t in ctx.lora if t.part in (f"lora_{side}", f"lora_embedding_{side}") and t.param == "weight"]
        scanned = [t for t in parts if t.key in stats]
        if scanned and all(stats[t.key].all_zero for t in scanned):
            return side, len(scanned)
    return None


def _live_parts(ctx: CheckContext) -> list[AdapterTensor]:
    """Tensors that change the output even when the LoRA matrices are zero: non-zero `lora_B.bias`,
    and non-zero full weights of `modules_to_save` (not a wrapped `base_layer`/`original_module`
    copy of the base's own weights, which PEFT saves beside embedding LoRA)."""
    stats = ctx.adapter.stats or {}
    bias = [t for t in ctx.lora if t.part == "lora_B" and t.param == "bias"]
    saved = [t for t in ctx.full if not _BASE_COPY.search(t.key)]
    return [t for t in (*bias, *saved) if t.key in stats and not stats[t.key].all_zero]


_BASE_COPY = re.compile(r"\.(?:base_layer|original_module)\.")


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
