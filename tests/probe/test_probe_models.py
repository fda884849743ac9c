"""`probe()` on real tiny models and real PEFT adapters (built once per worker by `probe_fx`)."""

from __future__ import annotations

from typing import Any

import pytest

from loraguard.findings import Severity, Verdict
from loraguard.probe import ProbeReport, probe

pytestmark = pytest.mark.slow


def probe_codes(report: ProbeReport) -> dict[str, Severity]:
    return {f.code: f.severity for f in report.findings if f.code.startswith("LG6")}


def test_the_fixture_base_spreads_by_itself(healthy_report: ProbeReport) -> None:
    base = healthy_report.context.base_stats  # type: ignore[union-attr]
    assert base.std is not None and base.std > 0.2 and base.distinct == 16
    assert base.mean is not None and 0.3 < base.mean < 0.7


def test_healthy_adapter_passes(healthy_report: ProbeReport) -> None:
    r = healthy_report
    assert r.verdict is Verdict.PASS and r.exit_code() == 0 and not r.stopped
    assert probe_codes(r) == {}
    assert r.blame is None and r.differential.startswith("healthy")
    assert r.effect is not None and r.effect.mean_kl is not None and r.effect.mean_kl > 0.01
    assert r.effect.max_logit_diff is not None and r.effect.max_logit_diff > 0.1
    adapted = r.context.adapted_stats  # type: ignore[union-attr]
    assert adapted.std is not None and adapted.std > 0.1 and adapted.distinct >= 8
    assert r.batch is not None and r.batch.rows == ()  # a correct model: batched equals one row at a time
    assert all(d is not None and d < 1e-4 for d in r.batch.max_diff.values())
    assert (r.samples, r.data, r.method, r.template) == (16, "builtin", "logits", "chat")


def test_degenerate_adapter_is_blamed(degenerate_report: ProbeReport) -> None:
    r = degenerate_report
    assert r.check.verdict is Verdict.PASS  # statically nothing is wrong with it
    assert probe_codes(r) == {"LG602": Severity.ERROR}
    assert r.verdict is Verdict.FAIL and r.exit_code() == 1
    assert r.blame == "adapter"
    assert r.differential == "degenerate only with the adapter: the adapter is the problem"
    stats = r.stats
    assert stats is not None and stats["adapted"].distinct == 1
    assert stats["base"].std is not None and stats["base"].std > 0.2 and stats["base"].distinct == 16


def test_degenerate_base_or_prompt_is_blamed_on_them(probe_fx: dict[str, Any]) -> None:
    r = probe(probe_fx["healthy"], probe_fx["base"], template=probe_fx["blind_template"], samples=8, device="cpu")
    assert "LG602" in probe_codes(r)
    assert r.blame == "base-or-prompt"
    assert r.differential == "degenerate with and without the adapter: the prompt or method is the problem"
    assert r.template == "blind.j2" and r.samples == 8


def test_noop_adapter_stops_at_check_and_with_force_has_no_effect(probe_fx: dict[str, Any]) -> None:
    stopped = probe(probe_fx["noop"], probe_fx["base"], device="cpu")
    assert stopped.stopped and stopped.context is None and stopped.exit_code() == 1
    assert "zero-adapter" in stopped.categories(Severity.ERROR) and "--force" in stopped.differential
    forced = probe(probe_fx["noop"], probe_fx["base"], force=True, device="cpu")
    assert not forced.stopped
    assert probe_codes(forced) == {"LG601": Severity.ERROR}
    assert forced.effect is not None and forced.effect.mean_kl == 0.0 and forced.effect.max_logit_diff == 0.0
    assert forced.blame == "adapter" and "no effect" in forced.differential


def test_non_finite_output(probe_fx: dict[str, Any]) -> None:
    stopped = probe(probe_fx["nonfinite"], probe_fx["base"], samples=4, device="cpu")
    assert stopped.stopped and "non-finite-weights" in stopped.categories()
    r = probe(probe_fx["nonfinite"], probe_fx["base"], samples=4, force=True, device="cpu")
    found = {f.code: f for f in r.findings}
    assert found["LG605"].severity is Severity.ERROR and found["LG605"].evidence["rows"] == 4
    assert found["LG605"].evidence["base_rows"] == 0
    assert r.blame == "adapter" and "NaN" in r.differential
    assert r.effect is not None and r.effect.mean_kl is None
    assert r.to_dict()["stats"]["adapted"]["mean"] is None  # NaN never reaches the JSON


def test_broken_batched_scorer_is_caught(probe_fx: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The classic padding bug: a decoder-only model padded on the RIGHT while the logits are read at the
    last position, which is padding for every row but the longest. Rows scored one at a time have no
    padding, so only the batched comparison can see it."""
    import loraguard.scoring.logits as logits

    def broken_left_pad(seqs: Any, pad_id: int) -> Any:
        width = max(len(s) for s in seqs)
        ids = [list(s) + [pad_id] * (width - len(s)) for s in seqs]
        mask = [[1] * len(s) + [0] * (width - len(s)) for s in seqs]
        return ids, mask, [list(range(width)) for _ in seqs]

    monkeypatch.setattr(logits, "left_pad", broken_left_pad)
    half = probe(probe_fx["healthy"], probe_fx["base"], device="cpu", dtype="bfloat16")
    assert probe_codes(half) == {"LG604": Severity.ERROR}  # bf16 rounding does not hide a padding bug
    r = probe(probe_fx["healthy"], probe_fx["base"], device="cpu", dtype="float32")
    assert probe_codes(r) == {"LG604": Severity.ERROR}
    assert r.batch is not None and r.batch.rows
    max_diff = r.batch.max_diff
    assert max_diff["left-padded"] is not None and max_diff["left-padded"] > 1e-3
    assert max_diff["prefix-cache"] is not None and max_diff["prefix-cache"] < 1e-4  # right-padded suffixes
    assert r.blame is None and "padding" in r.differential


def test_generate_method_reports_parse_failures(probe_fx: dict[str, Any], rows_csv: Any) -> None:
    r = probe(probe_fx["healthy"], probe_fx["base"], rows=rows_csv, samples=8, method="generate", device="cpu")
    assert r.data == str(rows_csv) and r.samples == 8
    assert probe_codes(r).get("LG606") is Severity.ERROR  # a random tiny model writes no numbers
    assert r.context is not None and r.context.adapted.texts is not None
    assert r.blame == "base-or-prompt"  # the base cannot answer in that format either


# --- issue 13 -------------------------------------------------------------------------------------------


def test_the_fixture_base_answers_with_the_answer_words(healthy_report: ProbeReport) -> None:
    ctx = healthy_report.context
    assert ctx is not None and ctx.base.answer_mass is not None and ctx.adapted.answer_mass is not None
    assert float(ctx.base.answer_mass.mean()) > 0.5 and float(ctx.adapted.answer_mass.mean()) > 0.5


def test_noop_adapter_on_a_degenerate_base_gets_one_verdict(probe_fx: dict[str, Any]) -> None:
    r = probe(
        probe_fx["noop"], probe_fx["base"], template=probe_fx["blind_template"], samples=8, force=True, device="cpu"
    )
    assert probe_codes(r) == {"LG601": Severity.WARNING, "LG602": Severity.ERROR}
    assert next(f for f in r.findings if f.code == "LG601").evidence["inconclusive"] is True
    assert r.blame == "base-or-prompt" and "adapter is the problem" not in r.differential
    assert "cannot be judged" in r.differential


def test_zero_lora_b_with_a_trained_bias_is_probed_not_stopped(probe_fx: dict[str, Any], tmp_path: Any) -> None:
    import torch

    from loraguard.demo.degenerate import save_adapter
    from loraguard.demo.tiny import quiet, read_tensors, write_tensors

    with quiet():
        path = save_adapter(probe_fx["base"], tmp_path / "bias-only", seed=5, init_lora_weights=True, lora_bias=True)
    tensors = read_tensors(path)
    gen = torch.Generator().manual_seed(0)
    assert all(not v.any() for k, v in tensors.items() if k.endswith("lora_B.weight"))
    write_tensors(
        path,
        {
            k: (torch.randn(v.shape, generator=gen).numpy() if k.endswith("lora_B.bias") else v)
            for k, v in tensors.items()
        },
    )
    r = probe(path, probe_fx["base"], samples=8, device="cpu")
    assert not r.stopped and r.check.errors == ()
    assert [f.code for f in r.check.warnings] == ["LG403"]
    assert "LG601" not in probe_codes(r)  # the bias changes the output: not a no-op
    assert r.effect is not None and r.effect.max_logit_diff is not None and r.effect.max_logit_diff > 1e-3


def test_answer_words_a_random_model_ignores(probe_fx: dict[str, Any], tmp_path: Any) -> None:
    from transformers import AutoTokenizer

    from loraguard.demo.degenerate import BASE_INIT_RANGE, BASE_SEED, build_healthy_adapter
    from loraguard.demo.tiny import build_tiny_base, quiet

    with quiet():
        tok = AutoTokenizer.from_pretrained(str(probe_fx["base"]))
        base = build_tiny_base(tmp_path / "random", seed=BASE_SEED, tokenizer=tok, initializer_range=BASE_INIT_RANGE)
        adapter = build_healthy_adapter(base, tmp_path / "healthy")
    r = probe(adapter, base, samples=8, device="cpu")
    assert probe_codes(r) == {"LG608": Severity.WARNING} and r.verdict is Verdict.WARN
    found = next(f for f in r.findings if f.code == "LG608")
    assert found.evidence["mean_answer_mass"] < 0.01 and "without the adapter too" in found.message


def test_healthy_adapter_passes_in_bfloat16(probe_fx: dict[str, Any]) -> None:
    """bf16 rounds the padded and unpadded paths differently; the probe's batch check must not call that a
    padding bug (the float32 run above asserts exactness)."""
    r = probe(probe_fx["healthy"], probe_fx["base"], device="cpu", dtype="bfloat16")
    assert r.verdict.value == "pass" and r.blame is None, [f.code for f in r.findings]
    assert r.batch is not None and r.batch.rows == ()
    assert all(d is not None and d < 1e-3 for d in r.batch.max_diff.values())


def test_progress_counts_every_forward_pass(probe_fx: dict[str, Any]) -> None:
    """Two one-row passes per row (adapter on and off), then one batch per batched path; the batch
    check covers the first batch_size - 1 rows and says so."""
    calls: list[tuple[str, int, int]] = []

    class Recorder:
        def start(self, total_rows: int, total_units: int) -> None:
            calls.append(("start", total_rows, total_units))

        def advance(self, rows: int, units: int) -> None:
            calls.append(("advance", rows, units))

    r = probe(probe_fx["healthy"], probe_fx["base"], samples=10, batch_size=4, device="cpu", progress=Recorder())
    assert calls[0][0] == "start" and calls[0][1] == 2 * 10 + 2
    steps = calls[1:]
    assert len(steps) == 22 and sum(rows for _, rows, _ in steps) == 22
    assert sum(units for _, _, units in steps) == calls[0][2] > 0  # tokens of the one-row passes
    assert r.batch is not None and r.batch.checked == 3 and r.batch.batch_size == 4
    assert r.to_dict()["batch"]["checked"] == 3
