"""Serving-engine profiles: every limit is caught for its engine, with its category, and only there.

Adapters are real PEFT adapters on the tiny Qwen2 base (the fault-case factory), some with their
config edited the way the limit describes. Each case lists, per engine, the LG7xx codes it must
raise; every other engine must raise none.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loraguard.checks.checker import check, engine_findings
from loraguard.checks.report import CheckReport
from loraguard.cli.app import main
from loraguard.codes import CATEGORIES, RULES
from loraguard.engines import ENGINES, PROFILES, EngineOptions, engine_verdicts, normalize_engines
from loraguard.errors import InputError
from loraguard.findings import Finding, Severity, verdict_of
from loraguard.probe.rules import all_rules

SERVING = ("vllm", "sglang", "lorax")
SILENT_CODES = {"LG709", "LG710", "LG732", "LG733"}
FACTORY_CASES = (
    "plain-qv",
    "all-linear",
    "rslora",
    "seq-cls-with-head",
    "phi3-fused",
    "layers-to-transform",
    "dora",
    "modules-to-save-lm-head",
    "embedding-lora",
    "nested-prefix",
    "other-class-prefix",
    "unknown-target-module",
    "vocab-mismatch",
)


def _copy_edit(src: Path, dst: Path, changes: dict[str, Any]) -> Path:
    from loraguard.demo.tiny import edit_adapter_config

    shutil.copytree(src, dst)
    edit_adapter_config(dst, changes)
    return dst


@pytest.fixture(scope="session")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Case name -> (adapter folder, base folder)."""
    pytest.importorskip("torch")
    from fault_cases import build_all, build_base, case_named
    from fault_cases.bases import BIG_VOCAB, TINY, TINY_PHI3, TINY_SEQ_CLS
    from loraguard.demo.tiny import quiet, save_peft

    work = tmp_path_factory.mktemp("engine-cases")
    with quiet():
        fx = build_base(work, torch=True)
        built = build_all(work, [case_named(n) for n in FACTORY_CASES], fixture=fx)
        out = {name: (item.adapter, item.base) for name, item in built.items()}
        extra = work / "extra"
        tiny, claim = fx.path(TINY), fx.name(TINY)
        plain = built["plain-qv"].adapter
        made = {
            "lora-bias": save_peft(fx.model(TINY), extra / "lora-bias", claim=claim, lora_bias=True),
            "pissa": save_peft(fx.model(TINY), extra / "pissa", claim=claim, init_lora_weights="pissa"),
            "rank-32": save_peft(fx.model(TINY), extra / "rank-32", claim=claim, r=32, lora_alpha=64),
            "rank-pattern-32": save_peft(
                fx.model(TINY),
                extra / "rank-pattern-32",
                claim=claim,
                rank_pattern={"q_proj": 32},
                alpha_pattern={"q_proj": 64},
            ),
            "embedding-big-vocab": save_peft(
                fx.model(BIG_VOCAB),
                extra / "embedding-big-vocab",
                claim=claim,
                target_modules=["embed_tokens", "q_proj"],
                embeddings="auto",
            ),
            "bias-all": _copy_edit(plain, extra / "bias-all", {"bias": "all"}),
            "alora": _copy_edit(plain, extra / "alora", {"alora_invocation_tokens": [5, 6]}),
            "claims-other-name": _copy_edit(
                plain, extra / "claims-other-name", {"base_model_name_or_path": "someone/tiny-qwen2-private"}
            ),
            "claims-phi3": _copy_edit(
                plain, extra / "claims-phi3", {"base_model_name_or_path": str(fx.path(TINY_PHI3))}
            ),
            "claims-qwen2-sibling": _copy_edit(
                plain, extra / "claims-qwen2-sibling", {"base_model_name_or_path": str(fx.path(TINY_SEQ_CLS))}
            ),
        }
        vocab = json.loads((tiny / "config.json").read_text())["vocab_size"]
        for name, ids in (("added-tokens", [vocab, vocab + 1]), ("added-tokens-from-base", [3, 4])):
            folder = _copy_edit(plain, extra / name, {})
            (folder / "added_tokens.json").write_text(json.dumps({f"<t{i}>": i for i in ids}))
            made[name] = folder
    out.update({name: (folder, tiny) for name, folder in made.items()})
    return out


def _engine_codes(report: CheckReport) -> dict[str, set[str]]:
    codes: dict[str, set[str]] = {e: set() for e in SERVING}
    for f in report.findings:
        if f.code.startswith("LG7"):
            codes[f.evidence["engine"]].add(f.code)
    return codes


HEALTHY = ("plain-qv", "all-linear", "rslora", "seq-cls-with-head", "phi3-fused", "layers-to-transform")

# (case, options, {engine: codes}); engines left out must report nothing.
LIMITS: list[tuple[str, dict[str, Any], dict[str, set[str]]]] = [
    ("dora", {}, {"vllm": {"LG701"}, "sglang": {"LG721"}}),
    ("lora-bias", {}, {"vllm": {"LG702"}}),
    ("bias-all", {}, {"vllm": {"LG702"}}),
    ("modules-to-save-lm-head", {}, {"vllm": {"LG703"}}),
    ("pissa", {}, {"vllm": {"LG704"}}),
    ("rank-32", {}, {"vllm": {"LG705"}}),
    ("rank-32", {"max_lora_rank": 16}, {"vllm": {"LG705"}, "sglang": {"LG723"}}),
    ("rank-32", {"max_lora_rank": 64}, {}),
    ("rank-pattern-32", {}, {"vllm": {"LG705"}}),
    ("plain-qv", {"max_lora_rank": 24}, {"vllm": {"LG705"}}),  # not one of vLLM's legal values
    ("alora", {}, {"vllm": {"LG706"}}),
    ("unknown-target-module", {}, {"vllm": {"LG707"}, "lorax": {"LG732"}}),
    ("embedding-big-vocab", {}, {"vllm": {"LG708"}, "sglang": {"LG722"}, "lorax": {"LG732"}}),
    ("nested-prefix", {}, {"vllm": {"LG709"}, "lorax": {"LG733"}}),
    ("other-class-prefix", {}, {"vllm": {"LG709"}, "lorax": {"LG733"}}),
    ("plain-qv", {"lora_target_modules": "o_proj"}, {"vllm": {"LG710"}, "sglang": {"LG724"}}),
    ("plain-qv", {"lora_target_modules": "qkv_proj,o_proj"}, {}),
    ("plain-qv", {"lora_target_modules": "all"}, {}),
    ("all-linear", {"lora_target_modules": "qkv_proj o_proj"}, {"vllm": {"LG710"}, "sglang": {"LG724"}}),
    ("claims-other-name", {}, {"vllm": {"LG711"}}),
    ("added-tokens", {}, {"sglang": {"LG722"}}),
    ("added-tokens-from-base", {}, {}),
    ("vocab-mismatch", {}, {"vllm": {"LG703"}, "sglang": {"LG722"}}),
    ("claims-phi3", {}, {"vllm": {"LG711"}, "lorax": {"LG731"}}),
    ("claims-qwen2-sibling", {}, {"vllm": {"LG711"}}),  # same architecture: LoRAX only warns
    ("embedding-lora", {}, {"lorax": {"LG732"}}),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "options", "expected"),
    LIMITS,
    ids=[f"{c}-{'-'.join(f'{k}={v}' for k, v in o.items()) or 'default'}" for c, o, _ in LIMITS],
)
def test_each_limit_is_caught_for_its_engine_only(cases, name, options, expected) -> None:
    adapter, base = cases[name]
    report = check(adapter, base, engines=SERVING, **options)
    codes = _engine_codes(report)
    assert codes == {e: expected.get(e, set()) for e in SERVING}, report.to_json()
    for f in report.findings:
        if not f.code.startswith("LG7"):
            continue
        engine = f.evidence["engine"]
        assert f.message.startswith(PROFILES[engine].display), f.message
        assert f.category == ("engine-silent-noop" if f.code in SILENT_CODES else "engine-incompatible")
        assert f.fix
    verdicts = engine_verdicts(report)
    for engine in SERVING:
        errors = {c for c in expected.get(engine, set()) if RULES[c].severity is Severity.ERROR}
        want = "refused" if errors - SILENT_CODES else "silent-noop" if errors else "ok"
        assert verdicts[engine] == want, (engine, verdicts)


@pytest.mark.slow
@pytest.mark.parametrize("name", HEALTHY)
def test_healthy_adapters_pass_every_profile(cases, name) -> None:
    adapter, base = cases[name]
    report = check(adapter, base, engines=ENGINES)
    assert not [f for f in report.findings if f.code.startswith("LG7")], report.to_json()
    assert report.verdict.value == "pass"
    assert engine_verdicts(report) == dict.fromkeys(SERVING, "ok")


@pytest.mark.slow
def test_default_engine_is_peft_and_adds_nothing(cases) -> None:
    for name in ("dora", "nested-prefix", "rank-32", "claims-phi3"):
        adapter, base = cases[name]
        report = check(adapter, base)
        assert report.engines == ("peft",)
        assert not [f for f in report.findings if f.code.startswith("LG7")]
        assert report.to_dict()["engines"] == ["peft"]
        assert engine_verdicts(report) == {}


@pytest.mark.slow
def test_silent_noop_messages_list_the_modules(cases) -> None:
    adapter, base = cases["nested-prefix"]
    [finding] = [f for f in check(adapter, base, engines=["vllm"]).findings if f.code == "LG709"]
    assert "apply it to nothing" in finding.message
    assert "language_model.model.layers.0.self_attn.q_proj" in finding.message
    assert "model.layers.0.self_attn.q_proj" in finding.evidence["suggestions"].values()
    adapter, base = cases["all-linear"]
    report = check(adapter, base, engines=["vllm"], lora_target_modules=["qkv_proj", "o_proj"])
    [partial] = [f for f in report.findings if f.code == "LG710"]
    assert "apply only part of it" in partial.message and "gate_up_proj" in partial.message
    assert partial.evidence["kinds"] == ["down_proj", "gate_proj", "up_proj"]


@pytest.mark.slow
def test_refusals_quote_the_engines_own_errors(cases) -> None:
    adapter, base = cases["rank-32"]
    [rank] = [f for f in check(adapter, base, engines=["vllm"]).findings if f.code == "LG705"]
    assert "LoRA rank 32 is greater than max_lora_rank 16." in rank.message
    assert "--max-lora-rank 32" in rank.fix
    adapter, base = cases["pissa"]
    [init] = [f for f in check(adapter, base, engines=["vllm"]).findings if f.code == "LG704"]
    assert "vLLM does not support init_lora_weights='pissa'" in init.message
    adapter, base = cases["plain-qv"]
    report = check(adapter, base, engines=["sglang"], lora_target_modules="o_proj")
    [targets] = [f for f in report.findings if f.code == "LG724"]
    assert "contains target modules ['qkv_proj']" in targets.message


@pytest.mark.slow
def test_engine_findings_on_a_context_leave_it_unchanged(cases) -> None:
    from loraguard.adapter.reader import read_adapter
    from loraguard.basemodel.resolve import resolve_base
    from loraguard.checks.context import CheckContext

    adapter, base = cases["rank-32"]
    ctx = CheckContext(read_adapter(adapter), resolve_base(base), base_given=True)
    found = engine_findings(ctx, ["vllm", "sglang"], EngineOptions(max_lora_rank=16))
    assert {(f.code, f.evidence["engine"]) for f in found} == {("LG705", "vllm"), ("LG723", "sglang")}
    assert ctx.engines == ("peft",) and ctx.engine_options == EngineOptions()
    assert not engine_findings(ctx, ["vllm"], EngineOptions(max_lora_rank=64))


@pytest.mark.slow
def test_cli_engine_options(cases, capsys) -> None:
    adapter, base = cases["rank-32"]
    args = ["check", str(adapter), "--base", str(base), "--format", "json"]
    assert main([*args, "--engine", "vllm", "--engine", "sglang", "--max-lora-rank", "16"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["engines"] == ["vllm", "sglang"]
    assert {f["code"] for f in data["findings"]} >= {"LG705", "LG723"}
    assert main([*args, "--engine", "vllm", "--engine", "sglang", "--max-lora-rank", "64"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert not [f for f in data["findings"] if f["code"].startswith("LG7")]
    adapter, base = cases["plain-qv"]
    args = ["check", str(adapter), "--base", str(base), "--format", "json", "-e", "vllm"]
    assert main([*args, "--lora-target-modules", "o_proj,down_proj"]) == 1
    assert "LG710" in {f["code"] for f in json.loads(capsys.readouterr().out)["findings"]}
    assert main([*args, "--lora-target-modules", "qkv_proj"]) == 0
    capsys.readouterr()
    assert main(["check", str(adapter), "--base", str(base), "--engine", "tgi"]) == 2


@pytest.mark.slow
def test_engine_checks_do_not_import_torch(cases) -> None:
    adapter, base = cases["nested-prefix"]
    code = (
        "import sys; from loraguard.cli.app import main; rc = main(['check', sys.argv[1], '--base', sys.argv[2],"
        " '-e', 'vllm', '-e', 'sglang', '-e', 'lorax', '--lora-target-modules', 'qkv_proj']);"
        " heavy = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]; print('HEAVY', heavy)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(adapter), str(base)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout and "LG709" in proc.stdout


# --- without torch ------------------------------------------------------------------------------


def test_engine_names_and_options_are_parsed() -> None:
    assert normalize_engines(None) == ("peft",)
    assert normalize_engines(["VLLM", "sglang", "vllm"]) == ("vllm", "sglang")
    assert normalize_engines("lorax") == ("lorax",)
    with pytest.raises(InputError, match="known: peft, vllm, sglang, lorax"):
        normalize_engines(["tgi"])
    assert EngineOptions.parse_targets("o_proj, qkv_proj o_proj") == ("o_proj", "qkv_proj")
    assert EngineOptions.parse_targets(["o_proj", "down_proj,up_proj"]) == ("o_proj", "down_proj", "up_proj")
    assert EngineOptions.parse_targets("") is None
    assert not EngineOptions(lora_target_modules=("all",)).restricts_targets
    assert EngineOptions(lora_target_modules=("o_proj",)).restricts_targets


def test_every_profile_limit_is_one_registered_rule() -> None:
    engine_rules = {r.code: r for r in all_rules() if r.code.startswith("LG7")}
    documented = {limit.code: name for name, p in PROFILES.items() for limit in p.limits}
    assert set(documented) == set(engine_rules)
    for code, engine in documented.items():
        assert engine_rules[code].name.startswith(engine + "-"), code
        assert engine_rules[code].category in ("engine-incompatible", "engine-silent-noop")
    assert {"engine-incompatible", "engine-silent-noop"} <= set(CATEGORIES)
    for profile in PROFILES.values():
        assert profile.version and profile.describes and all(limit.source for limit in profile.limits)
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "### Serving engines" in readme
    assert all(f"| {code} |" in readme for code in documented), "README's engine tables miss a rule"


def test_engine_verdicts_read_each_engines_errors() -> None:
    def finding(code: str, category: str, engine: str, severity: Severity = Severity.ERROR) -> Finding:
        return Finding(code, category, severity, "m", "f", {"engine": engine})

    findings = (
        finding("LG701", "engine-incompatible", "vllm"),
        finding("LG709", "engine-silent-noop", "vllm"),
        finding("LG733", "engine-silent-noop", "lorax"),
        finding("LG723", "engine-incompatible", "sglang", Severity.WARNING),
    )
    report = CheckReport(verdict_of(findings), {}, None, findings, engines=("peft", "vllm", "sglang", "lorax"))
    assert engine_verdicts(report) == {"vllm": "refused", "sglang": "ok", "lorax": "silent-noop"}
