"""Every fault case built with real PEFT is caught with its category; every healthy variant passes."""

from __future__ import annotations

import pytest

from loraguard.checks.checker import check
from loraguard.demo.faults import ALL, FAULTS, HEALTHY
from loraguard.findings import Severity


@pytest.mark.slow
@pytest.mark.parametrize("case", FAULTS, ids=lambda c: c.name)
def test_fault_is_caught_with_its_category(case, built_cases) -> None:
    item = built_cases[case.name]
    report = check(item.adapter, item.base)
    found = report.categories() - {"provenance"}
    assert case.expected <= found, report.to_json()
    unexpected = found - case.expected - case.tolerated
    assert not unexpected, f"{case.name}: unexpected {unexpected}\n{report.to_json()}"
    if case.verdict is not None:
        assert report.verdict.value == case.verdict


@pytest.mark.slow
@pytest.mark.parametrize("case", HEALTHY, ids=lambda c: c.name)
def test_healthy_variant_passes_clean(case, built_cases) -> None:
    item = built_cases[case.name]
    report = check(item.adapter, item.base)
    noisy = [f for f in report.findings if f.severity is not Severity.INFO]
    assert not noisy, report.to_json()
    assert report.verdict.value == "pass"
    assert report.exit_code(strict=True) == 0


@pytest.mark.slow
def test_case_study_report_names_the_base_the_tensors_fit(built_cases) -> None:
    item = built_cases["case-study-at-scale"]
    report = check(item.adapter, item.base)
    inferred = [b.name for b in report.inferred_bases]
    assert inferred and all("Qwen3-4B" in name for name in inferred), inferred
    contradiction = [f for f in report.findings if f.code == "LG501"]
    assert contradiction and "Qwen3-4B" in contradiction[0].message
    assert report.exit_code() == 1


@pytest.mark.slow
def test_without_base_the_claimed_base_is_used(built_cases) -> None:
    item = built_cases["case-study-at-scale"]  # claims Qwen/Qwen2.5-1.5B-Instruct, in the catalog
    report = check(item.adapter)
    assert report.base is not None and report.base["name"] == "Qwen/Qwen2.5-1.5B-Instruct"
    assert report.base["given"] is False
    assert {"shape-mismatch", "claimed-base-mismatch"} <= report.categories()


@pytest.mark.slow
def test_single_weights_file_is_accepted(built_cases) -> None:
    item = built_cases["plain-qv"]
    report = check(item.adapter / "adapter_model.safetensors", item.base)
    assert report.verdict.value == "pass"
    assert report.adapter["tensors"] > 0


@pytest.mark.slow
def test_check_never_writes_into_adapter_or_base(built_cases) -> None:
    def snapshot(folder):
        return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}

    for case in ALL[:6] + FAULTS[:8]:
        item = built_cases[case.name]
        before = (snapshot(item.adapter), snapshot(item.base))
        check(item.adapter, item.base)
        assert (snapshot(item.adapter), snapshot(item.base)) == before


@pytest.mark.slow
def test_hostile_pickle_is_never_executed(built_cases, tmp_path, monkeypatch) -> None:
    import os

    calls = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a) or 0)
    for name in ("unsafe-pickle-raw", "unsafe-pickle-torch-zip"):
        item = built_cases[name]
        report = check(item.adapter, item.base)
        finding = next(f for f in report.findings if f.category == "unsafe-pickle")
        assert "system" in finding.message
    assert calls == []
