"""LG5xx: which base the adapter claims, which it names, which its tensors fit, and its provenance."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from loraguard.adapter.card import card_base_model
from loraguard.basemodel.resolve import is_local_path, normalize_model_name, quantization_of, unescape_modelscope
from loraguard.basemodel.spec import BaseSpec
from loraguard.checks.context import CheckContext
from loraguard.codes import rule
from loraguard.fileio import loads_bounded, read_bounded
from loraguard.findings import Finding, Severity

HINT_TOLERANCE = (0.7, 1.45)


_SIZE_TOKEN = re.compile(r"(\d+(?:\.\d+)?)([bm])(\d)?", re.I)
"""`7B`, `1.5b`, `270m`, and BLOOM's `1b1` (1.1B)."""


def size_hints(name: str) -> list[float]:
    """Parameter counts (in billions) named in `name`: "reddit-4b-think" -> [4.0], "gemma-3-270m" -> [0.27].

    ModelScope's escape of `.` is undone first: `Qwen2___5-1___5B-Instruct` says 1.5B, not 5B. A
    size is a whole token between `-`, `_`, `/` or spaces, so a version never reads as one (`Qwen2.5`,
    `v0.3`, `Llama-3.1`); a size token that `_` joins to a bare number before it (`Qwen2_5-1_5B`,
    where `_` stands for a dot) is ambiguous and left out.
    """
    hints = []
    for token in re.split(r"[/\s]", unescape_modelscope(name)):
        parts = re.split(r"([-_])", token)
        for i in range(0, len(parts), 2):
            m = _SIZE_TOKEN.fullmatch(parts[i])
            if m is None or (i >= 2 and parts[i - 1] == "_" and parts[i - 2].isdigit()):
                continue
            value = float(f"{m[1]}.{m[3]}") if m[3] else float(m[1])
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
    (`_name_or_path` of its config.json, else its folder name). When the claimed base cannot be
    resolved and only a folder name (or a GGUF file name) names the given one, two names are all that
    was compared: an info, saying so.

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
    if ctx.claimed is None and weak_identity(ctx.base):
        yield claimed_base_differs.finding(
            f"config names {claim}; the base's only name, {ctx.base.name!r}, is {_WEAK} (the model's config does "
            "not name it), and the two names differ. The claimed base could not be resolved, so only names were "
            "compared: a folder name is weak evidence of which model the folder holds.",
            fix=f"Make sure the folder holds {claim}, or pass its Hub id as --base.",
            severity=Severity.INFO,
            claimed=claim,
            base=ctx.base.name,
            compared="names",
            identity_from=_WEAK,
            evidence_strength="weak",
        )
        return
    yield claimed_base_differs.finding(
        f"config names {claim} but the base is {ctx.base.name}.",
        fix="Use the named base, or check the adapter was trained on this one.",
        claimed=claim,
        base=ctx.base.name,
    )


def weak_identity(base: BaseSpec) -> bool:
    """`base.name` is only a name someone gave a folder or file: config.json without `_name_or_path`
    (not a Hub-cache folder), or a GGUF named by its file or folder rather than its source repo."""
    if base.name_from_folder:
        return True
    gguf = base.config.get("gguf") if isinstance(base.config, dict) else None
    source = gguf.get("identity_from") if isinstance(gguf, dict) else None
    return isinstance(source, str) and source.startswith(("folder name", "file name"))


_WEAK = "a folder or file name"


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
    different models (Qwen2 vs Qwen2.5, base vs Instruct), by the given base's `_name_or_path`.
    When the base's only name is its folder's (config.json without `_name_or_path`, as
    `save_pretrained` writes it today), the names prove nothing about the weights: an info saying
    what was compared (shapes: equal; names: a folder name against the claim).

    Why it matters: the adapter loads and runs, but its deltas were learned against other weights:
    quality drops silently, sometimes to degenerate outputs.

    How to fix: use the exact base the adapter names.
    """
    claim = _claim(ctx)
    if not (
        claim
        and ctx.base is not None
        and ctx.base_given
        and not _same_model(claim, ctx.base.name)
        and _same_shapes(ctx)
    ):
        return
    if weak_identity(ctx.base):
        yield base_version_mismatch.finding(
            f"config names {claim}; the base has the same shapes, and its only name, {ctx.base.name!r}, is {_WEAK} "
            "(the model's config does not name it). Compared: module shapes (equal) and names (a folder name, weak "
            "evidence): whether the folder holds the weights of another model cannot be told from its name.",
            fix=f"Make sure the folder holds {claim} (or pass its Hub id as --base); if it holds another version or "
            "the base/Instruct twin, use the exact base the adapter names.",
            severity=Severity.INFO,
            claimed=claim,
            base=ctx.base.name,
            compared="shapes and names",
            identity_from=_WEAK,
            evidence_strength="weak",
        )
        return
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


@rule("LG507", "no-base-to-check", "base-unchecked", Severity.WARNING, "No base to check the adapter against")
def no_base_to_check(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: without `--base`, that the base the adapter claims (`base_model_name_or_path`,
    else its model card's `base_model`) could be resolved offline: from the catalog, a local model
    folder or the local Hugging Face cache. When it cannot (a local path such as `/kaggle/...` or
    `./out` that is absent here, a null claim, a name outside the catalog), the message says what was
    not checked.

    Why it matters: every rule that compares the adapter with its base (shapes, layers, key
    prefixes, target names, the base's identity) was skipped: a clean report then says nothing
    about whether the adapter fits any model.

    How to fix: pass the base: `loraguard check ADAPTER --base BASE` (a folder holding
    config.json, a .gguf file or a Hub id); `loraguard catalog` lists the names known offline.
    """
    cfg = ctx.config
    if ctx.base is not None or ctx.base_given or cfg is None or not cfg.is_lora:
        return
    claim = cfg.base_model
    card = card_base_model(ctx.adapter.folder)
    if not claim:
        why = "the config names no base (base_model_name_or_path is null)" + (
            f" and its model card's base_model {card!r} is not in the catalog or the local Hugging Face cache"
            if card
            else ""
        )
    elif is_local_path(claim):
        why = f"the claimed base {claim!r} is a local path that holds no model here"
    else:
        why = f"the claimed base {claim!r} is not in the catalog or the local Hugging Face cache"
    fits = ", ".join(b.name for b in ctx.inferred[:3])
    yield no_base_to_check.finding(
        f"no base to check against: {why}, and no --base was given. Tensor shapes, layer counts, key prefixes, "
        "target module names and the base's identity were not checked"
        + (f" (the tensors' shapes fit {fits})." if fits else "."),
        fix="Pass the base: loraguard check ADAPTER --base <folder with config.json | file.gguf | Hub id>; "
        "`loraguard catalog` lists the names known offline.",
        claimed=claim,
        card_base_model=card,
        inferred=[b.name for b in ctx.inferred[:5]],
    )


@rule(
    "LG508",
    "claimed-base-local-path",
    "base-not-portable",
    Severity.WARNING,
    "The config names its base by a local path",
)
def claimed_base_local_path(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: `base_model_name_or_path` is a local path (`/kaggle/input/...`, `./out`,
    `C:\\models\\...`, `models/...`) rather than a Hub id.

    Why it matters: the adapter cannot name its base: `AutoPeftModel` and serving engines' resolvers
    read this field and fail anywhere but on the machine that trained it, and nothing says which
    published model the adapter was trained on.

    How to fix: set base_model_name_or_path to the base's Hub id (and `base_model:` in the model card).
    """
    cfg = ctx.config
    claim = cfg.base_model if cfg is not None and cfg.is_lora else None
    if not claim or not is_local_path(claim):
        return
    card = card_base_model(ctx.adapter.folder)
    if ctx.claimed is not None and Path(claim).expanduser().is_dir():
        known = f"; on this machine it holds {ctx.claimed.name}"
    elif ctx.claimed is not None and card and _same_model(card, ctx.claimed.name):
        known = f"; its model card names {card}, which was checked in its place"
    elif ctx.claimed is not None:
        known = f"; loraguard matched its last folder's name to {ctx.claimed.name} (a guess from a name)"
    elif card and not is_local_path(card):
        known = f"; the model card names {card}"
    elif ctx.inferred:
        known = f"; the tensors fit {', '.join(b.name for b in ctx.inferred[:3])}"
    else:
        known = ""
    yield claimed_base_local_path.finding(
        f"base_model_name_or_path is a local path ({claim!r}): not portable, no one else can load the base from "
        f"it, and the adapter does not say which published model it was trained on{known}.",
        fix="Set base_model_name_or_path (and the model card's base_model) to the base's Hub id.",
        claimed=claim,
        card_base_model=card,
    )


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
