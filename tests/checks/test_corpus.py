"""Real public adapters and the case study's configs (../shared): sensible verdicts, no crash."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from loraguard.checks.checker import check
from loraguard.checks.report import CheckReport
from loraguard.findings import Severity

# adapter -> (base folder under base-configs or None, categories that must be reported, verdict)
EXPECTED = {
    "qwen2.5-0.5b-instruct-qv": ("Qwen__Qwen2.5-0.5B-Instruct", set(), "pass"),
    "llama3.2-1b-qv-r8": ("derived__Llama-3.2-1B-pruned-15layers", {"layer-mismatch"}, "fail"),
    "gpt2-medium-cattn": ("openai-community__gpt2", {"shape-mismatch", "layer-mismatch"}, "fail"),
    "gemma-2b-it-nested-prefix-bf16": ("google__gemma-2b", {"prefix-mismatch", "base-version-mismatch"}, "fail"),
    # Issue 13 reversed this verdict: 'V' is a stale name beside 'q', whose tensors carry the adapter (a warning).
    "flan-t5-base-qV-case-mismatch": ("google__flan-t5-base", {"unknown-target-module"}, "warn"),
    "smollm2-360m-qv-r8": ("Qwen__Qwen3-1.7B", {"shape-mismatch", "name-hint-conflict"}, "fail"),
    "smollm2-360m-nested-prefix-nullbase": (None, {"prefix-mismatch"}, "fail"),
    "rugpt3small-nested-prefix-mixed-rank": (None, {"rank-mismatch", "declared-target-missing"}, "fail"),
    "stella-400m-featext-qkvo-partial": (None, {"zero-adapter"}, "fail"),
    "bloom-1b1-prompt-tuning-bin": (None, {"unreadable"}, "warn"),
    "gpt2-peft": (None, set(), "pass"),
    "gemma3-270m-it-qkvo-r4": (None, set(), "pass"),
}


@pytest.mark.shared
def test_every_corpus_adapter_gets_a_report(shared_dir: Path) -> None:
    adapters = sorted((shared_dir / "corpus" / "adapters").iterdir())
    assert len(adapters) >= 20
    for folder in adapters:
        report = check(folder)
        assert report.verdict.value in {"pass", "warn", "fail"}
        assert report.adapter["name"] == folder.name


@pytest.mark.shared
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_adapter_verdicts(shared_dir: Path, name: str) -> None:
    base_dir, categories, verdict = EXPECTED[name]
    base = shared_dir / "corpus" / "base-configs" / base_dir if base_dir else None
    report = check(shared_dir / "corpus" / "adapters" / name, base)
    assert categories <= report.categories(), report.to_json()
    assert report.verdict.value == verdict, report.to_json()


@pytest.mark.shared
def test_remote_code_base_is_a_clean_unreadable_finding(shared_dir: Path) -> None:
    report = check(
        shared_dir / "corpus" / "adapters" / "phi1_5-fin-qv",
        shared_dir / "corpus" / "base-configs" / "microsoft__phi-1_5-legacy-mixformer",
    )
    assert "unreadable" in report.categories()
    assert report.verdict.value == "fail"


@pytest.mark.shared
def test_case_study_configs(shared_dir: Path) -> None:
    seeds = shared_dir / "data" / "seed-adapter-configs"
    mahmoud = check(seeds / "reddit-4b-think", "Qwen/Qwen2.5-1.5B-Instruct")
    assert {"zero-adapter", "name-hint-conflict", "unknown-config-field"} <= mahmoud.categories()
    seojin = check(seeds / "seojinpark-fold3", "Qwen/Qwen2.5-1.5B-Instruct")
    assert "quantization-variant" in seojin.categories()
    assert "name-hint-conflict" not in seojin.categories()


@pytest.mark.shared
def test_non_lora_adapter_gets_no_structure_findings(shared_dir: Path) -> None:
    report = check(
        shared_dir / "corpus" / "adapters" / "bloom-1b1-prompt-tuning-bin",
        shared_dir / "corpus" / "base-configs" / "Qwen__Qwen2.5-0.5B-Instruct",
    )
    assert "prefix-mismatch" not in report.categories()
    assert any(f.code == "LG104" for f in report.findings)


# --- issue 13: false alarms on real adapters, and what was silently left unchecked -------------------


def _corpus(shared_dir: Path, name: str) -> Path:
    return shared_dir / "corpus" / "adapters" / name


def _base(shared_dir: Path, name: str) -> Path:
    return shared_dir / "corpus" / "base-configs" / name


def _copy_with_config(src: Path, dst: Path, **changes: object) -> Path:
    shutil.copytree(src, dst)
    path = dst / "adapter_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}, indent=2))
    return dst


def _only(report: CheckReport, code: str) -> list:
    return [f for f in report.findings if f.code == code]


@pytest.mark.shared
def test_stale_target_names_beside_working_targets_are_warnings(shared_dir: Path, tmp_path: Path) -> None:
    t5 = check(_corpus(shared_dir, "flan-t5-base-qV-case-mismatch"), _base(shared_dir, "google__flan-t5-base"))
    [stale] = _only(t5, "LG204")
    assert stale.severity is Severity.WARNING and stale.evidence["targets"] == ["V"] and stale.evidence["stale"]
    assert stale.evidence["matched"] == ["q"] and "PEFT ignored it" in stale.message
    distilbert = check(
        _corpus(shared_dir, "distilbert-seqcls-bin-partial-targets"),
        _base(shared_dir, "distilbert__distilbert-base-uncased-seqcls"),
    )
    [stale] = _only(distilbert, "LG204")
    assert stale.severity is Severity.WARNING and stale.evidence["targets"] == ["q", "k", "v"]
    assert not distilbert.errors, distilbert.to_json()
    # GPT-2 with q_proj/v_proj left in the config from a Llama recipe: still works as trained.
    gpt2 = _copy_with_config(
        _corpus(shared_dir, "gpt2-tigrinya"), tmp_path / "gpt2", target_modules=["c_attn", "c_proj", "q_proj", "v_proj"]
    )
    report = check(gpt2, _base(shared_dir, "openai-community__gpt2"))
    assert report.verdict.value == "warn" and [f.code for f in report.warnings] == ["LG204"], report.to_json()
    assert _only(report, "LG204")[0].evidence["targets"] == ["q_proj", "v_proj"]


@pytest.mark.shared
def test_target_names_stay_errors_when_nothing_matches(shared_dir: Path) -> None:
    # The GPT-2 adapter on Qwen2.5: no target matches (PEFT raises), the tensors name modules Qwen lacks.
    report = check(_corpus(shared_dir, "gpt2-tigrinya"), _base(shared_dir, "Qwen__Qwen2.5-0.5B-Instruct"))
    found = _only(report, "LG204")
    assert found and all(f.severity is Severity.ERROR and not f.evidence["stale"] for f in found)
    assert "PEFT raises" in found[0].message and report.verdict.value == "fail"


@pytest.mark.shared
def test_heads_named_in_modules_to_save_are_expected_without_task_type(shared_dir: Path, tmp_path: Path) -> None:
    # DistilBERT: modules_to_save ["pre_classifier", "classifier", "classifier", "score"], task_type unset.
    emotion = _copy_with_config(_corpus(shared_dir, "distilbert-emotion-seqcls"), tmp_path / "emo", task_type=None)
    assert "task-head" not in check(emotion).categories()
    # ViT food-101: task_type null, modules_to_save ["classifier"].
    assert "task-head" not in check(_corpus(shared_dir, "vit-base-food101-qv")).categories()
    # ...but a head nobody asked to save is still reported.
    unnamed = _copy_with_config(
        _corpus(shared_dir, "distilbert-emotion-seqcls"), tmp_path / "unnamed", task_type=None, modules_to_save=None
    )
    assert "task-head" in check(unnamed).categories()


@pytest.mark.shared
def test_no_base_to_check_against_is_said(shared_dir: Path) -> None:
    bloom = check(_corpus(shared_dir, "bloom-560m-qkv"))  # BLOOM: no real config found for the catalog yet
    [warning] = _only(bloom, "LG507")
    assert warning.severity is Severity.WARNING and "'bigscience/bloom-560m' is not in the catalog" in warning.message
    assert "--base" in warning.fix and "not checked" in warning.message and bloom.verdict.value == "warn"
    assert not _only(bloom, "LG508")
    assert not _only(check(_corpus(shared_dir, "t5-small-seq2seq-qv")), "LG507")  # t5-small is in the catalog
    null = check(_corpus(shared_dir, "rugpt3small-nested-prefix-mixed-rank"))
    [warning] = _only(null, "LG507")
    assert "base_model_name_or_path is null" in warning.message
    assert warning.evidence["card_base_model"] == "ai-forever/rugpt3small_based_on_gpt2"
    given = check(_corpus(shared_dir, "t5-small-seq2seq-qv"), _base(shared_dir, "google__flan-t5-base"))
    assert not _only(given, "LG507")


@pytest.mark.shared
def test_a_local_path_as_claimed_base_is_not_portable(shared_dir: Path) -> None:
    report = check(_corpus(shared_dir, "gemma3-270m-localpath-qv-r16"))  # /workspace/svg_logo_task/gemma3-270m
    [note] = _only(report, "LG508")
    assert note.category == "base-not-portable" and "/workspace/svg_logo_task/gemma3-270m" in note.message
    assert "not portable" in note.message and "google/gemma-3-270m" in note.message
    assert not _only(report, "LG507")  # resolved from the folder's name, so checked
