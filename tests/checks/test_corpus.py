"""Real public adapters and the case study's configs (../shared): sensible verdicts, no crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from loraguard.checks.checker import check

# adapter -> (base folder under base-configs or None, categories that must be reported, verdict)
EXPECTED = {
    "qwen2.5-0.5b-instruct-qv": ("Qwen__Qwen2.5-0.5B-Instruct", set(), "pass"),
    "llama3.2-1b-qv-r8": ("derived__Llama-3.2-1B-pruned-15layers", {"layer-mismatch"}, "fail"),
    "gpt2-medium-cattn": ("openai-community__gpt2", {"shape-mismatch", "layer-mismatch"}, "fail"),
    "gemma-2b-it-nested-prefix-bf16": ("google__gemma-2b", {"prefix-mismatch", "base-version-mismatch"}, "fail"),
    "flan-t5-base-qV-case-mismatch": ("google__flan-t5-base", {"unknown-target-module"}, "fail"),
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
