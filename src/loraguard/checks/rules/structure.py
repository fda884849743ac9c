"""LG3xx: the adapter's tensors against the base's modules (shapes, layers, prefixes, heads)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator

from loraguard.basemodel.spec import layer_index, layer_relative
from loraguard.checks.context import CheckContext
from loraguard.checks.shapes import ShapeProblem
from loraguard.codes import rule
from loraguard.findings import Finding, Severity


def _group(problems: Iterable[ShapeProblem], ctx: CheckContext) -> dict[tuple[str, str, str, int, int], list[str]]:
    grouped: dict[tuple[str, str, str, int, int], list[str]] = defaultdict(list)
    prefixes = ctx.base.layer_prefixes if ctx.base else ()
    for p in problems:
        relative = layer_relative(p.module, prefixes)
        grouped[(relative, p.part, p.dim, p.expected, p.actual)].append(p.module)
    return grouped


def _emit_shapes(ctx: CheckContext, category: str) -> Iterator[Finding]:
    target = shape_mismatch if category == "shape-mismatch" else vocab_mismatch
    problems = [p for p in ctx.shape_problems if p.category == category]
    fits = ", ".join(b.name for b in ctx.inferred[:3])
    hint = f" The tensors fit: {fits}." if fits and category == "shape-mismatch" else ""
    for i, ((relative, part, dim, expected, actual), modules) in enumerate(sorted(_group(problems, ctx).items())):
        base_name = ctx.base.name if ctx.base else "the base"
        yield target.finding(
            f"{relative}.{part}: {dim} {actual} in the adapter, {expected} in {base_name} "
            f"({len(modules)} module(s), e.g. {modules[0]}).{hint if i == 0 else ''}",
            fix="Use the base the adapter was trained for (see inferred bases).",
            module=relative,
            part=part,
            dim=dim,
            expected=expected,
            actual=actual,
            count=len(modules),
            examples=modules[:3],
        )


@rule("LG301", "shape-mismatch", "shape-mismatch", Severity.ERROR, "A tensor does not fit the base module it maps to")
def shape_mismatch(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: lora_A's input width, lora_B's output width, DoRA magnitudes and saved
    full weights against the base module's in/out features (hidden size, q and kv widths, MLP width).

    Why it matters: the adapter was trained for another base. PEFT raises a size-mismatch only
    after the whole base is loaded; serving engines may reject or misapply it.

    How to fix: use the base the tensors fit (the report's inferred bases).
    """
    yield from _emit_shapes(ctx, "shape-mismatch")


@rule("LG305", "vocab-mismatch", "vocab-mismatch", Severity.ERROR, "Embeddings or lm_head with another vocabulary size")
def vocab_mismatch(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: saved `embed_tokens`/`lm_head` weights (modules_to_save) and embedding LoRA
    (`lora_embedding_A`) against the base's vocabulary size.

    Why it matters: the adapter was trained with added tokens or on another tokenizer; PEFT raises
    a size mismatch, vLLM rejects it, and resizing by hand misaligns token ids.

    How to fix: resize the base's embeddings with the adapter's tokenizer before loading, or use
    the matching base.
    """
    yield from _emit_shapes(ctx, "vocab-mismatch")


@rule("LG302", "layer-out-of-range", "layer-mismatch", Severity.ERROR, "Tensors for layers the base does not have")
def layer_out_of_range(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: layer indices in tensor names against the base's number of layers.

    Why it matters: PEFT drops keys for layers the base lacks without a word; the adapter then
    acts on a truncated set of layers of a model it was not trained for.

    How to fix: use the deeper base the adapter was trained for.
    """
    if ctx.base is None:
        return
    extra = sorted(
        {
            i
            for m, p in ctx.placements.items()
            if p.status == "extra-layer" and (i := layer_index(m, ctx.base.layer_prefixes)) is not None
        }
    )
    if extra:
        yield layer_out_of_range.finding(
            f"tensors for layers {extra[0]}–{extra[-1]} but {ctx.base.name} has {ctx.base.num_layers} "
            f"layers (0–{ctx.base.num_layers - 1}); PEFT drops them silently.",
            fix="Use the base the adapter was trained for.",
            extra_layers=extra,
            base_layers=ctx.base.num_layers,
        )


@rule(
    "LG303",
    "layer-coverage-gap",
    "layer-mismatch",
    Severity.WARNING,
    "Fewer layers than the base, and layers_to_transform does not say so",
)
def layer_coverage_gap(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: for each targeted module kind, which layers carry tensors, against the
    layers PEFT would adapt (all, or `layers_to_transform`).

    Why it matters: PEFT creates the missing layers with lora_B = 0 (a partial no-op) and warns
    only through `from_pretrained`; a file cut short or saved from a pruned model looks like this.

    How to fix: re-save the adapter, or set layers_to_transform to the layers it really has.
    """
    if ctx.base is None or ctx.config is None or not ctx.lora or ctx.shape_problems:
        return  # with shape errors the adapter is for another base: a coverage gap would mislead
    expected = ctx.targeted_modules()
    present = {m for m, p in ctx.placements.items() if p.status == "ok" and m in ctx.by_module}
    missing = expected - present
    if not missing or not present:
        return
    prefixes = ctx.base.layer_prefixes
    present_kinds = {layer_relative(m, prefixes) for m in present}
    missing = {m for m in missing if layer_relative(m, prefixes) in present_kinds}
    layers = sorted({i for m in missing if (i := layer_index(m, prefixes)) is not None})
    if layers:
        yield layer_coverage_gap.finding(
            f"no tensors for layer(s) {_ranges(layers)} of {ctx.base.num_layers} for modules the config "
            f"targets ({len(missing)} module(s), e.g. {sorted(missing)[0]}); layers_to_transform is not set.",
            fix="Re-save the adapter, or declare layers_to_transform.",
            missing_layers=layers,
            missing_modules=len(missing),
        )


@rule("LG304", "prefix-mismatch", "prefix-mismatch", Severity.ERROR, "Tensor keys map to no module of the base")
def prefix_mismatch(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: every tensor name (below `base_model.model.`) is a module of the base.

    Why it matters: keys nested under another prefix (`language_model.`, a doubled
    `base_model.model.`) or named for another model class load without error in PEFT and vLLM and
    are dropped: the adapter silently does nothing (vLLM issues 34186, 48019).

    How to fix: rename the keys to the base's module names (the message shows the mapping), or
    load the adapter on the model class it was saved from.
    """
    unmapped = {m: p for m, p in ctx.placements.items() if p.status == "unmapped"}
    if not unmapped:
        return
    with_fix = {m: p.suggestion for m, p in unmapped.items() if p.suggestion}
    example = next(iter(unmapped))
    if with_fix:
        m, s = next(iter(with_fix.items()))
        detail = f"e.g. {m} would be {s} on this base"
    else:
        detail = f"e.g. {example}"
    yield prefix_mismatch.finding(
        f"{len(unmapped)} adapter module(s) match no module of {ctx.base.name if ctx.base else 'the base'} "
        f"({detail}); PEFT and vLLM drop them silently.",
        fix="Rename the keys to the base's module names, or use the model class they were saved from.",
        modules=len(unmapped),
        examples=sorted(unmapped)[:3],
        suggestions=dict(list(with_fix.items())[:3]),
    )


_HEAD_PARTS = frozenset({"score", "classifier", "pre_classifier", "classification_head", "decode_head"})
"""Module names of classification heads (any path component): `score`, `classifier.dense`, `decode_head.classifier`."""


@rule(
    "LG306",
    "task-head-mismatch",
    "task-head",
    Severity.WARNING,
    "A classification head present or absent against task_type",
)
def task_head_mismatch(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: a SEQ_CLS adapter carries its `score`/`classifier` head weights; an adapter
    whose task_type is CAUSAL_LM or unset carries none that `modules_to_save` does not name
    (`decode_head`, `classifier`, `score`, `pre_classifier` named there are expected: PEFT saved them
    because the config asked it to).

    Why it matters: without its saved head a classifier gets a freshly random head: predictions
    are noise. A head on a CAUSAL_LM adapter that the config never asked to save means it was
    trained as a classifier.

    How to fix: re-save the adapter with `modules_to_save=["score"]` (or "classifier"), or load
    it with the task class it was trained with.
    """
    if ctx.config is None or not ctx.config.is_lora or not ctx.adapter.tensors:
        return
    heads = sorted({t.module for t in ctx.full if _HEAD_PARTS.intersection(t.module.split("."))})
    task = ctx.config.task_type
    declared = tuple(ctx.config.modules_to_save)
    if task == "SEQ_CLS" and not heads:
        yield task_head_mismatch.finding(
            "task_type is SEQ_CLS but the file has no score/classifier weights: the head would be "
            "randomly initialised.",
            fix='Re-save with modules_to_save=["score"] (or "classifier").',
            task_type=task,
        )
        return
    undeclared = [h for h in heads if not named_in(h, declared)]
    if task in ("CAUSAL_LM", None) and undeclared:
        yield task_head_mismatch.finding(
            f"task_type is {task or 'unset'} but the file carries classification head weights ({undeclared[0]}) "
            "that modules_to_save does not name.",
            fix="Load it as a sequence classifier, or set task_type to SEQ_CLS.",
            heads=undeclared,
        )


def named_in(module: str, names: Iterable[str]) -> bool:
    """`module` is, or sits inside, a module that a `modules_to_save` entry designates. PEFT wraps
    every module whose name ends with an entry (a plain string suffix: `classifier` also wraps
    `pre_classifier`) and saves the wrapped module's weights under their paths inside it."""
    parts = module.split(".")
    ancestors = [".".join(parts[: i + 1]) for i in range(len(parts))]
    return any(a.endswith(name) for a in ancestors for name in names if name)


def _ranges(values: list[int]) -> str:
    out: list[str] = []
    start = prev = values[0]
    for v in [*values[1:], None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        out.append(f"{start}" if start == prev else f"{start}–{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(out)
