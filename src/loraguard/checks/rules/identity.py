"""LG5xx: which base the adapter claims, which it names, which its tensors fit, and its provenance."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from loraguard.adapter.card import card_base_model
from loraguard.basemodel.resolve import normalize_model_name, quantization_of
from loraguard.checks.context import CheckContext
from loraguard.codes import rule
from loraguard.fileio import loads_bounded, read_bounded
from loraguard.findings import Finding, Severity

HINT_TOLERANCE = (0.7, 1.45)


def size_hints(name: str) -> list[float]:
    """Parameter counts (in billions) named in `name`: "reddit-4b-think" -> [4.0], "gemma-3-270m" -> [0.27]."""
    hints = []
    for token in re.split(r"[/\s]", name):
        for part in re.split(r"[-_]", token):
            m = re.fullmatch(r"(\d+(?:\.\d+)?)([bm])", part, re.I)
            if m:
                value = float(m[1])
                hints.append(value if m[2].lower() == "b" else value / 1000)
    return hints


def _claim(ctx: CheckContext) -> str | None:
    return ctx.config.base_model if ctx.config is not None else None


def _is_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or "\\" in name or name.count("/") > 1


def _same_model(a: str, b: str) -> bool:
    return normalize_model_name(a) == normalize_model_name(b)


@rule(
    "LG501",
    "claimed-base-contradicted",
    "claimed-base-mismatch",
    Severity.ERROR,
    "The config's claimed base contradicts the tensors",
)
def claimed_base_contradicted(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: the tensors' shapes against the base named by `base_model_name_or_path`
    (when it is the given base, a catalog model or in the local Hub cache).

    Why it matters: configs can lie. The case study: a config claiming Qwen2.5-1.5B-Instruct on
    an adapter whose tensors fit only Qwen3-4B-class models; every prediction came out 0.0.

    How to fix: trust the tensors: use one of the inferred bases, or another adapter.
    """
    claim = _claim(ctx)
    if not claim or ctx.base is None:
        return
    fits = ", ".join(b.name for b in ctx.inferred[:4]) or "no catalog model"
    if _same_model(claim, ctx.base.name) and ctx.structure_errors:
        yield claimed_base_contradicted.finding(
            f"config claims {claim} but the tensors do not fit it; they fit {fits}.",
            fix="Use the base the tensors fit; the config was edited or copied.",
            claimed=claim,
            inferred=[b.name for b in ctx.inferred[:5]],
        )
    elif ctx.claimed is not None and not _same_model(claim, ctx.base.name):
        sig = ctx.claimed.layer_signature()
        misfit = [
            r for r, (i, o) in ctx.signature.items() if r in sig and (sig[r].in_features, sig[r].out_features) != (i, o)
        ]
        if misfit:
            yield claimed_base_contradicted.finding(
                f"config claims {claim} but the tensors do not fit it ({misfit[0]}); they fit {fits}.",
                fix="Use the base the tensors fit.",
                claimed=claim,
                modules=misfit[:5],
            )


@rule(
    "LG502",
    "claimed-base-differs",
    "claimed-base-mismatch",
    Severity.WARNING,
    "The config names another model than the given base",
)
def claimed_base_differs(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: `base_model_name_or_path` against the identity of the base you gave
    (`_name_or_path` of its config.json, else its folder name).

    Why it matters: PEFT never compares them; vLLM's resolvers require them to be equal. Same
    shapes do not mean same weights.

    How to fix: use the named base, or confirm the adapter was trained on yours.
    """
    claim = _claim(ctx)
    if not claim or ctx.base is None or not ctx.base_given or _is_path(claim):
        return
    if _same_model(claim, ctx.base.name) or _same_shapes(ctx):
        return
    if ctx.claimed is not None and _misfits_claim(ctx):
        return  # LG501 reports the contradiction
    yield claimed_base_differs.finding(
        f"config names {claim} but the base is {ctx.base.name}.",
        fix="Use the named base, or check the adapter was trained on this one.",
        claimed=claim,
        base=ctx.base.name,
    )


def _same_shapes(ctx: CheckContext) -> bool:
    return (
        ctx.claimed is not None
        and ctx.base is not None
        and ctx.claimed.layer_signature() == ctx.base.layer_signature()
        and ctx.claimed.num_layers == ctx.base.num_layers
    )


def _misfits_claim(ctx: CheckContext) -> bool:
    sig = ctx.claimed.layer_signature() if ctx.claimed else {}
    return any(r in sig and (sig[r].in_features, sig[r].out_features) != io for r, io in ctx.signature.items())


@rule(
    "LG503",
    "base-version-mismatch",
    "base-version-mismatch",
    Severity.WARNING,
    "Same shapes, other model: version or base vs Instruct",
)
def base_version_mismatch(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: the claimed base and the given base have identical module shapes but are
    different models (Qwen2 vs Qwen2.5, base vs Instruct).

    Why it matters: the adapter loads and runs, but its deltas were learned against other weights:
    quality drops silently, sometimes to degenerate outputs.

    How to fix: use the exact base the adapter names.
    """
    claim = _claim(ctx)
    if (
        claim
        and ctx.base is not None
        and ctx.base_given
        and not _same_model(claim, ctx.base.name)
        and _same_shapes(ctx)
    ):
        yield base_version_mismatch.finding(
            f"config names {claim}; the base is {ctx.base.name}: same shapes, different weights.",
            fix=f"Use {claim} as the base.",
            claimed=claim,
            base=ctx.base.name,
        )


@rule(
    "LG504",
    "quantization-variant",
    "quantization-variant",
    Severity.INFO,
    "The claimed base is a quantized variant of the given base, or the reverse",
)
def quantization_variant(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: the claimed and given bases are the same model except for quantization
    (GPTQ, AWQ, bitsandbytes, GGUF, MLX), from names or the base's `quantization_config`.

    Why it matters: QLoRA adapters usually transfer to full precision with small score shifts
    (info); GGUF/MLX variants are other runtimes whose loaders differ (warning).

    How to fix: compare a few predictions on both before deploying.
    """
    claim = _claim(ctx)
    if not claim or ctx.base is None or not _same_model(claim, ctx.base.name):
        return
    q_claim = quantization_of(claim, None)
    q_base = quantization_of(ctx.base.name, ctx.base.config)
    if q_claim != q_base:
        severe = {q_claim, q_base} & {"gguf", "mlx"}
        yield quantization_variant.finding(
            f"config names {claim} ({q_claim or 'full precision'}); the base is {ctx.base.name} "
            f"({q_base or 'full precision'}).",
            fix="Compare a few predictions on both before deploying.",
            severity=Severity.WARNING if severe else None,
            claimed_quantization=q_claim,
            base_quantization=q_base,
        )


@rule(
    "LG505",
    "name-hint-conflict",
    "name-hint-conflict",
    Severity.WARNING,
    "Size tokens in names contradict the base's size",
)
def name_hint_conflict(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: size tokens ("4b", "7B", "270m") in the adapter's folder or repo name and in
    the claimed base name, against the base's parameter count derived from its config.

    Why it matters: the case study's adapter folder said "reddit-4b-think" while its config claimed
    a 1.5B base; the name told the truth.

    How to fix: find out which base the adapter was trained on (see inferred bases).
    """
    if ctx.base is None or ctx.base.param_count <= 0:
        return
    size_b = ctx.base.param_count / 1e9
    sources = {"adapter name": ctx.adapter.repo_id or ctx.adapter.name, "claimed base": _claim(ctx) or ""}
    for label, name in sources.items():
        for hint in size_hints(name.rsplit("/", 1)[-1] if label == "claimed base" else name):
            ratio = hint / size_b
            if not HINT_TOLERANCE[0] <= ratio <= HINT_TOLERANCE[1]:
                fits = ", ".join(b.name for b in ctx.inferred[:3])
                yield name_hint_conflict.finding(
                    f"{label} {name!r} says {hint:g}B but {ctx.base.name} has {size_b:.2f}B parameters"
                    + (f"; the tensors fit {fits}." if fits else "."),
                    fix="Find out which base the adapter was trained on.",
                    source=label,
                    hint_b=hint,
                    base_b=round(size_b, 3),
                )
                break


_EVIDENCE = {
    "trainer_state.json": "trainer_state.json",
    "training_args.bin": "training args",
    "all_results.json": "all_results.json",
    "eval_results.json": "eval results",
    "train_results.json": "train results",
    "train.pkl": "train split",
    "val.pkl": "validation split",
}


@rule("LG506", "training-provenance", "provenance", Severity.INFO, "What training evidence exists")
def training_provenance(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: what lies beside the adapter: a model card naming `base_model`,
    `trainer_state.json` (steps, eval loss), training arguments, eval results. Nothing is executed
    (`training_args.bin` is a pickle and is never loaded).

    Why it matters: with no evidence of training, nothing cross-checks the config's claims.

    How to fix: prefer adapters that publish their training record.
    """
    folder = ctx.adapter.folder
    if folder is None or not folder.is_dir():
        return
    found = [label for name, label in _EVIDENCE.items() if (folder / name).is_file()]
    card_base = card_base_model(folder)
    if card_base:
        found.insert(0, f"model card base_model {card_base}")
    steps = _trainer_steps(folder / "trainer_state.json")
    if steps:
        found.append(steps)
    message = (
        ("training evidence: " + "; ".join(found))
        if found
        else (
            "no training evidence beside the adapter (no model card base_model, trainer_state.json, "
            "training args or eval results): nothing cross-checks the config."
        )
    )
    yield training_provenance.finding(message, evidence_found=found, card_base_model=card_base)


def _trainer_steps(path: Path) -> str | None:
    try:  # untrusted: size- and depth-bounded, and only a regular file (never a FIFO or device)
        state = loads_bounded(read_bounded(path, 16 << 20)) if path.is_file() else None
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict):
        return None
    history = state.get("log_history")
    losses = [e.get("eval_loss") for e in history if isinstance(e, dict)] if isinstance(history, list) else []
    evals = [v for v in losses if isinstance(v, int | float) and not isinstance(v, bool)]
    step = state.get("global_step")
    text = f"{step if isinstance(step, int) and not isinstance(step, bool) else '?'} steps"
    return text + (f", last eval_loss {evals[-1]:.4g}" if evals else "")
