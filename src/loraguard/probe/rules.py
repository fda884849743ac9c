"""LG6xx: the dynamic probe's rules. They read a `ProbeContext` (what the model did), so only
`loraguard probe` runs them; `check()` leaves the LG6 family out and these functions return nothing
when handed anything but a `ProbeContext`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

import loraguard.checks.rules
import loraguard.probe.load  # noqa: F401  (registers the guarded load's LG8xx, for `all_rules`)
from loraguard.codes import PROBE_FAMILY, RULES, Rule, by_prefix, rule
from loraguard.findings import Finding, Severity
from loraguard.probe.context import ProbeContext
from loraguard.scoring.answers import low_answer_mass
from loraguard.scoring.parse import DEFAULT_VALUE

__all__ = ["all_rules", "probe_rule", "run_rules"]

ProbeFn = Callable[[ProbeContext], list[Finding]]


def probe_rule(
    code: str, name: str, category: str, severity: Severity, title: str
) -> Callable[[ProbeFn], Rule[object]]:
    """Register a probe rule in the shared rule table (for `explain` and docs/rules.md)."""

    def register(func: ProbeFn) -> Rule[object]:
        @functools.wraps(func)
        def guarded(ctx: object) -> list[Finding]:
            return func(ctx) if isinstance(ctx, ProbeContext) else []

        return rule(code, name, category, severity, title)(guarded)

    return register


def all_rules() -> list[Rule[Any]]:
    """Every rule by code: the static check's (LG1xx-LG5xx, LG7xx), the probe's LG6xx and the guarded load's LG8xx."""
    return by_prefix(RULES.values())


def run_rules(ctx: ProbeContext) -> list[Finding]:
    """Every LG6xx rule's findings for `ctx`."""
    findings: list[Finding] = []
    for r in by_prefix(RULES.values(), [PROBE_FAMILY]):
        findings.extend(r.func(ctx))
    return findings


def _g(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


@probe_rule("LG601", "no-effect", "no-effect", Severity.ERROR, "the adapter does not change the model's output")
def no_effect(ctx: ProbeContext) -> list[Finding]:
    """What it checks: the next-token distribution at the answer position, with and without the
    adapter, on every sampled row: the mean KL divergence KL(adapted ‖ base) and the largest
    absolute logit difference over the whole vocabulary. Both below their thresholds (defaults
    mean KL < 1e-6 and max |Δlogit| < 1e-4) is an error, unless the bare base's own predictions are
    degenerate (the same whatever the row): then the adapter cannot be shown to have no effect on
    these rows and the finding is a warning marked inconclusive (`blame` goes to the base or prompt).

    Why it matters: PEFT loads an adapter whose weights are all zero (saved before training), whose
    keys match no module (another model's prefix) or whose layers the base lacks without a word. The
    classifier then runs the bare base while everyone believes it runs the fine-tuned model.

    How to fix: run `loraguard check` on the adapter and base and fix what it reports (zero lora_B,
    prefix or layer mismatch, wrong base); make sure the adapter was saved after training. When
    inconclusive, first fix the prompt template, answer words or method so the base's outputs
    depend on the row, then probe again.
    """
    e = ctx.effect
    if not ctx.no_effect():
        return []
    t = ctx.thresholds
    measured = (
        f"mean KL {_g(e.mean_kl)} between the next-token distributions at the answer position with and without "
        f"it, max |Δlogit| {_g(e.max_logit_diff)}, over {e.rows} rows"
    )
    base_reason = ctx.degenerate(ctx.base)
    if base_reason is not None:
        return [
            no_effect.finding(
                f"inconclusive: the adapter changes nothing measurable ({measured}), but the bare base's predictions "
                f"are degenerate too ({base_reason}): on rows the model does not tell apart, the adapter's effect "
                "cannot be judged, so it is not blamed",
                severity=Severity.WARNING,
                fix="fix the prompt template, answer words or method until the base's own predictions depend on the "
                "row (try another --template or --method), then probe again",
                inconclusive=True,
                base_degenerate=base_reason,
                mean_kl=e.mean_kl,
                max_logit_diff=e.max_logit_diff,
                rows=e.rows,
                kl_below=t.no_effect_kl,
                logit_diff_below=t.no_effect_logit,
            )
        ]
    return [
        no_effect.finding(
            f"the adapter changes nothing: {measured}",
            fix="run `loraguard check` on this adapter and base: zero lora_B, tensor keys PEFT cannot match, or "
            "layers the base lacks all load silently and do nothing",
            inconclusive=False,
            mean_kl=e.mean_kl,
            max_logit_diff=e.max_logit_diff,
            rows=e.rows,
            kl_below=t.no_effect_kl,
            logit_diff_below=t.no_effect_logit,
        )
    ]


@probe_rule(
    "LG602",
    "degenerate-output",
    "degenerate-output",
    Severity.ERROR,
    "constant or nearly constant predictions with the adapter",
)
def degenerate_output(ctx: ProbeContext) -> list[Finding]:
    """What it checks: the adapted model's predictions over the sampled rows: a standard deviation
    below 1e-3 (at least 2 rows), or at most 2 distinct values (rounded to 1e-6) over at least 8
    rows, the thresholds of `loraguard score` and the monitor's `degenerate` rule. The same test on
    the base's predictions says who is to blame (the `blame` field).

    Why it matters: this is the case study's failure: every prediction 0.0 with "100% parse
    success". A classifier whose output does not depend on its input ranks nothing (AUC 0.5), and no
    exception or parse error says so. Predictions that merely cluster are not degenerate.

    How to fix: degenerate only with the adapter: the adapter is the problem (trained for another base,
    collapsed during training, or trained on another prompt format). Degenerate without it too: fix
    the prompt template, the answer words or the method first.
    """
    reason = ctx.degenerate(ctx.adapted)
    if reason is None:
        return []
    a, b = ctx.adapted_stats, ctx.base_stats
    base_reason = ctx.degenerate(ctx.base)
    if base_reason is not None:
        where = f"degenerate without the adapter too ({base_reason})"
        fix = (
            "the base gives the same answer to every row as well: the prompt template, answer words or "
            "method is the problem; try another --template or --method logits before blaming the adapter"
        )
    else:
        where = f"without the adapter they spread: {b.describe()}"
        fix = (
            "the adapter makes the answer independent of the input: check it was trained for this base "
            "(`loraguard check`), did not collapse in training, and expects this prompt format"
        )
    mass = low_answer_mass(ctx.adapted.answer_mass, ctx.thresholds.low_answer_mass) if ctx.method == "logits" else None
    ignored = f"; the answer tokens get {mass:.2%} of the probability mass on average" if mass is not None else ""
    return [
        degenerate_output.finding(
            f"predictions with the adapter are degenerate ({reason}): {a.describe()}; {where}{ignored}",
            fix=fix,
            adapted=a.to_dict(),
            base=b.to_dict(),
            base_degenerate=base_reason is not None,
            mean_answer_mass=mass,
            std_below=ctx.thresholds.degenerate_std,
            distinct_at_most=ctx.thresholds.degenerate_max_distinct,
            min_rows=ctx.thresholds.degenerate_min_rows,
        )
    ]


@probe_rule("LG603", "low-spread", "low-spread", Severity.WARNING, "predictions with the adapter look flat (a hint)")
def low_spread(ctx: ProbeContext) -> list[Finding]:
    """What it checks: heuristics from the case study on the adapted predictions, when they are not
    degenerate: a standard deviation below 0.05, a mean outside [0.2, 0.8], or a maximum below 0.3.

    Why it matters: a working classifier on a balanced sample usually spreads its probabilities;
    predictions squeezed into a narrow band or that never reach 0.3 often mean the adapter barely
    reads the input or the prompt asks the wrong question. It is a hint, not a failure: a sample with
    few positives legitimately has a low mean.

    How to fix: look at the predictions next to the labels (`loraguard score` prints AUCs); check the
    prompt template matches the adapter's training format; probe more rows (`--samples`).
    """
    if ctx.degenerate(ctx.adapted) is not None:
        return []
    reasons = ctx.low_spread(ctx.adapted)
    if not reasons:
        return []
    s, t = ctx.adapted_stats, ctx.thresholds
    return [
        low_spread.finding(
            f"predictions with the adapter look flat: {'; '.join(reasons)} ({s.describe()})",
            fix="a hint, not a failure: compare with the labels (`loraguard score` prints AUCs), check the prompt "
            "matches the adapter's training format, or probe more rows with --samples",
            stats=s.to_dict(),
            std_below=t.low_spread_std,
            mean_outside=list(t.low_spread_mean),
            max_below=t.low_spread_max,
        )
    ]


@probe_rule(
    "LG604",
    "batch-inconsistency",
    "batch-inconsistency",
    Severity.ERROR,
    "batched predictions differ from one row at a time",
)
def batch_inconsistency(ctx: ProbeContext) -> list[Finding]:
    """What it checks: the adapted model scores the same rows one at a time (no padding) and batched
    with mixed lengths, both through `loraguard score`'s paths (left padding with an attention mask
    and position ids, and the shared-prefix KV cache). Any row whose P(Yes) differs by more than 1e-3,
    or is finite on one side only, is an error.

    Why it matters: padding bugs (no attention mask, right padding for a decoder-only model, position
    ids that count the padding) make batched outputs garbage while every single-row test looks fine,
    so the failure appears only in the production run.

    How to fix: pass the attention mask and position ids when batching and pad on the left for
    decoder-only models; until fixed, score one row at a time (`--batch-size 1`).
    """
    b = ctx.batch
    if b is None or not b.rows:
        return []
    shown = ", ".join(f"{path} {_g(d)}" for path, d in b.max_diff.items())
    ids = ", ".join(b.rows[:5]) + (" ..." if len(b.rows) > 5 else "")
    return [
        batch_inconsistency.finding(
            f"batched scoring (batch size {b.batch_size}) disagrees with one row at a time on {len(b.rows)} of "
            f"{len(ctx.row_ids)} rows (row_id {ids}); max |ΔP(Yes)|: {shown}",
            fix="padding is mishandled: pass attention_mask and position_ids and pad on the left; meanwhile "
            "score with --batch-size 1",
            batch_size=b.batch_size,
            max_diff=dict(b.max_diff),
            rows=list(b.rows),
            tolerance=ctx.thresholds.batch_tolerance,
        )
    ]


@probe_rule("LG605", "non-finite-output", "non-finite-output", Severity.ERROR, "NaN or Inf logits with the adapter")
def non_finite_output(ctx: ProbeContext) -> list[Finding]:
    """What it checks: every logit at the answer position, and every prediction, of the adapted
    model on the sampled rows; any NaN or Inf is an error. The base is checked the same way to say
    whether the adapter is to blame.

    Why it matters: a NaN in one LoRA matrix spreads through the residual stream to every logit; a
    parser or a `max()` then turns it into a plausible-looking constant answer.

    How to fix: run `loraguard check` (it reports NaN/Inf weights); retrain or re-export the adapter
    without overflow; load the model in float32 (`--dtype float32`) if half precision overflows.
    """
    n = len(ctx.row_ids)
    bad = ctx.adapted.nonfinite_rows
    if not bad:
        return []
    base_bad = ctx.base.nonfinite_rows
    if base_bad:
        fix = "the base alone gives NaN/Inf too: load it in float32 (--dtype float32) and check its weights"
    else:
        fix = (
            "run `loraguard check` (NaN/Inf weights); re-export the adapter, or load in float32 if half "
            "precision overflows"
        )
    return [
        non_finite_output.finding(
            f"{bad} of {n} rows give NaN/Inf logits or predictions with the adapter ({base_bad} without it)",
            fix=fix,
            rows=bad,
            base_rows=base_bad,
            total=n,
        )
    ]


@probe_rule("LG606", "parse-failure", "parse-failure", Severity.ERROR, "generated answers the parser cannot read")
def parse_failure(ctx: ProbeContext) -> list[Finding]:
    """What it checks: with `--method generate`, the share of rows whose generated text no parser
    stage (number, regex, keyword) could read, so the parser's default was used: an error above 20%,
    a warning above 5%.

    Why it matters: the default value (0.5) is indistinguishable from a real prediction downstream;
    a success rate that counts the keyword or default stages as "parsed" hid the case study's failure.

    How to fix: use `--method logits` (P(Yes) from the answer token's logits, nothing to parse), or a
    prompt template asking for exactly the format the adapter was trained to write.
    """
    if ctx.method != "generate":
        return []
    share, t = ctx.adapted.parse_failure_share, ctx.thresholds
    if share <= t.parse_warning_share:
        return []
    severity = Severity.ERROR if share > t.parse_error_share else Severity.WARNING
    n = len(ctx.row_ids)
    return [
        parse_failure.finding(
            f"{share:.0%} of {n} generated answers could not be parsed (the default {DEFAULT_VALUE} was used); "
            f"without the adapter {ctx.base.parse_failure_share:.0%}",
            severity=severity,
            fix="use --method logits (no parsing), or a --template asking for the format the adapter was trained "
            "to write",
            share=share,
            base_share=ctx.base.parse_failure_share,
            stages=dict(ctx.adapted.stage_counts),
            error_above=t.parse_error_share,
            warning_above=t.parse_warning_share,
        )
    ]


@probe_rule("LG607", "small-effect", "no-effect", Severity.WARNING, "the adapter does not move P(Yes)")
def small_effect(ctx: ProbeContext) -> list[Finding]:
    """What it checks: when the adapter does change the next-token distribution (not LG601), the
    largest change it makes to P(Yes) over the sampled rows; below 0.02 is a warning. On the real
    SmolLM2-135M-Instruct, adapters trained in the scoring prompt moved P(Yes) by 0.28-0.31 over the
    16 built-in rows; the same recipe trained in another prompt format (`plain` instead of `chat`)
    moved it by 0.012: that adapter is there, and idle.

    Not reported when the bare base's predictions are degenerate (LG602 then blames the prompt).

    Why it matters: an adapter that only moves tokens other than the answer leaves the classifier
    exactly where the bare base was: it was trained for another task or another answer format.

    How to fix: check the adapter was trained to answer this question with these answer words and
    this prompt template; compare `loraguard score` with and without it.
    """
    e = ctx.effect
    if ctx.no_effect() or e.max_prob_diff is None or e.max_prob_diff >= ctx.thresholds.small_effect_prob:
        return []
    if ctx.degenerate(ctx.base) is not None:
        return []  # the base answers every row alike: the adapter's effect on the answer cannot be judged
    return [
        small_effect.finding(
            f"the adapter changes the next-token distribution (mean KL {_g(e.mean_kl)}) but moves P(Yes) by at "
            f"most {_g(e.max_prob_diff)} over {e.rows} rows",
            fix="the adapter does not act on this answer: check it was trained for this question, answer words "
            "and prompt template (probe again with the --template it was trained with)",
            max_prob_diff=e.max_prob_diff,
            mean_kl=e.mean_kl,
            below=ctx.thresholds.small_effect_prob,
        )
    ]


@probe_rule(
    "LG608",
    "answer-words-ignored",
    "answer-mass",
    Severity.WARNING,
    "the model puts almost no probability on the answer words",
)
def answer_words_ignored(ctx: ProbeContext) -> list[Finding]:
    """What it checks: with `--method logits`, the softmax mass the adapted model puts on all the
    answer tokens (the Yes and No variants) at the answer position, averaged over the sampled rows;
    below 1% is a warning. The base's mass says whether the adapter caused it. Not reported when the
    predictions are degenerate (LG602 then carries the mass).

    Why it matters: P(Yes) = p(Yes) / (p(Yes) + p(No)) is computed whatever the model would really
    say. When it would say something else 99.8% of the time, that ratio compares two tokens the model
    barely considers: the predictions can spread and look healthy while meaning little.

    How to fix: give the answer words this model (and adapter) answers with (`--answers`), or the
    prompt template it was trained with (`--template`); `loraguard score --dump-prompts` shows
    exactly what the model reads.
    """
    if ctx.method != "logits" or ctx.degenerate(ctx.adapted) is not None:
        return []
    t = ctx.thresholds
    mass = low_answer_mass(ctx.adapted.answer_mass, t.low_answer_mass)
    if mass is None:
        return []
    base_mass = _mean(ctx.base.answer_mass)
    if base_mass is not None and base_mass < t.low_answer_mass:
        where = (
            f"without the adapter too ({base_mass:.2%}): the answer words or the prompt template do not fit this model"
        )
    elif base_mass is not None:
        where = (
            f"without the adapter {base_mass:.2%}: the adapter was trained to answer otherwise (other words or "
            "another format)"
        )
    else:
        where = "the answer words or the prompt template do not fit this model"
    return [
        answer_words_ignored.finding(
            f"the answer tokens get {mass:.2%} of the probability mass on average with the adapter, {where}; "
            "P(Yes) then compares two tokens the model barely considers",
            fix="pass the answer words the model answers with (--answers) or the template it was trained with "
            "(--template); `loraguard score --dump-prompts` shows the exact prompts",
            mean_answer_mass=mass,
            base_mean_answer_mass=base_mass,
            below=t.low_answer_mass,
        )
    ]


def _mean(values: Any) -> float | None:
    if values is None:
        return None
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite.mean()) if finite.size else None
