"""Helpers for the registry tests: fake adapter folders, real `CheckReport`s with chosen findings, and the
worker that spawned processes run (it must live in an importable module, not a test file)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from loraguard.checks.report import CheckReport
from loraguard.findings import Finding, Severity, verdict_of


def make_report(*codes: str, task: str = "SEQ_CLS") -> CheckReport:
    """A real CheckReport whose findings are errors with these codes (none: a pass)."""
    findings = tuple(
        Finding(
            code, "zero-adapter", Severity.ERROR, f"{code}: every lora_B tensor is zero", fix="re-save after training"
        )
        for code in codes
    )
    return CheckReport(
        verdict=verdict_of(findings), adapter={"name": "fake", "task_type": task}, base=None, findings=findings
    )


def passing(path: str, base: str) -> CheckReport:
    return make_report()


def slow_passing(path: str, base: str) -> CheckReport:
    """A pass that takes 20 ms, like a real check, outside any transaction: lets concurrent writers interleave."""
    time.sleep(0.02)
    return make_report()


def failing(path: str, base: str) -> CheckReport:
    return make_report("LG401")


def make_adapter(folder: Path, weights: bytes = b"\x00\x01weights" * 64, *, nested: bool = False) -> Path:
    """A folder shaped like a PEFT adapter (the fake check never parses it)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 4}', encoding="utf-8")
    (folder / "adapter_model.safetensors").write_bytes(weights)
    if nested:
        (folder / "tokenizer").mkdir(exist_ok=True)
        (folder / "tokenizer" / "vocab.txt").write_text("a\nb\n", encoding="utf-8")
    return folder


def make_base(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"model_type": "qwen2"}', encoding="utf-8")
    return folder


def add_many(url: str, name: str, adapter: str, base: str, count: int, start: Any, out: Any) -> None:
    """Run in a spawned process: open the registry, wait at the `start` barrier (all workers ready), then add
    `count` versions of `name` and set traffic on each (one transaction each); put the refs (or the error)
    on the `out` queue."""
    from loraguard.registry import Registry
    from loraguard.registry.admission import admit

    refs = []
    try:
        with Registry(url, lock_timeout=30) as reg:
            start.wait(60)
            for i in range(count):
                entry = admit(reg, name, adapter, base=base, check_fn=slow_passing, actor=f"proc-{name}")
                reg.set_traffic(entry.ref, float(i + 1))
                refs.append(entry.ref)
    except Exception as exc:
        out.put(f"{type(exc).__name__}: {exc}")
        return
    out.put(refs)
