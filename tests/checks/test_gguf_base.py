"""`check` on a GGUF base equals `check` on the same model's config.json: same findings, same base numbers.

Adapters and GGUF files are written with numpy and `gguf.GGUFWriter` (no torch); see
`tests/basemodel/gguf_helpers.py`.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "basemodel"))
from gguf_helpers import gguf_from_config, write_config, write_lora

from loraguard.basemodel.catalog import find_entry
from loraguard.basemodel.resolve import resolve_base
from loraguard.basemodel.skeleton import cache_dir
from loraguard.basemodel.spec import BaseSpec, layer_relative
from loraguard.checks.checker import check
from loraguard.checks.report import CheckReport

# The modules a typical classifier LoRA targets, per layout (layer-relative names).
TARGETS = {
    "llama": ("self_attn.q_proj", "self_attn.v_proj"),
    "qwen2": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"),
    "gemma3_text": ("self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj"),
    "phi3": ("self_attn.qkv_proj", "self_attn.o_proj"),
    "gpt2": ("attn.c_attn",),
}
MODELS = [
    "HuggingFaceTB/SmolLM2-360M-Instruct",
    "Qwen/Qwen2.5-0.5B-Instruct",
    "google/gemma-3-270m-it",
    "microsoft/Phi-3-mini-4k-instruct",
    "openai-community/gpt2",
]


def adapter_shapes(spec: BaseSpec, *, widen: int = 0) -> dict[str, tuple[int, int]]:
    """(in, out) of the target modules of every layer; `widen` adds to every input (a wrong-base adapter)."""
    wanted = TARGETS[spec.model_type]
    return {
        module: (shape.in_features + widen, shape.out_features)
        for module, shape in spec.modules.items()
        if layer_relative(module, spec.layer_prefixes) in wanted
    }


def comparable(report: CheckReport) -> dict[str, Any]:
    """What a user reads in a report, except where the base was read from and how long it took."""
    base = {k: v for k, v in (report.base or {}).items() if k not in {"source", "path"}}
    return {
        "verdict": report.verdict,
        "findings": [(f.code, f.category, f.severity, f.message, f.fix, dict(f.evidence)) for f in report.findings],
        "base": base,
        "inferred": [b.to_dict() for b in report.inferred_bases],
        "adapter": {k: v for k, v in report.adapter.items() if k != "ref"},
    }


def pair(tmp_path: Path, name: str) -> tuple[Path, Path]:
    config = dict(find_entry(name).config)  # type: ignore[union-attr]
    org, short = name.split("/")
    folder = write_config(tmp_path / "hf" / f"{org}__{short}", config)
    gguf = gguf_from_config(config, tmp_path / "gguf" / f"{short}-Q4_K_M.gguf", general={"general.organization": org})
    return folder, gguf


@pytest.mark.parametrize("name", MODELS)
def test_check_on_gguf_equals_check_on_config_json(tmp_path: Path, name: str) -> None:
    folder, gguf = pair(tmp_path, name)
    spec = resolve_base(folder)
    cases = {
        "healthy": write_lora(tmp_path / "healthy", adapter_shapes(spec), claim=name),
        "wrong-base": write_lora(tmp_path / "wrong", adapter_shapes(spec, widen=64), claim=name),
        "other-claim": write_lora(tmp_path / "other", adapter_shapes(spec), claim="Qwen/Qwen2.5-7B-Instruct"),
    }
    for label, adapter in cases.items():
        on_config, on_gguf = check(adapter, folder), check(adapter, gguf)
        assert comparable(on_gguf) == comparable(on_config), label
        assert on_gguf.base is not None and on_gguf.base["source"] == "gguf" and on_gguf.base["path"] == str(gguf)
    assert check(cases["healthy"], gguf).verdict == "pass"
    wrong = check(cases["wrong-base"], gguf)
    assert wrong.verdict == "fail" and "shape-mismatch" in wrong.categories()


def test_real_smollm2_gguf_checks_like_its_config_json(tmp_path: Path) -> None:
    real = cache_dir() / "models" / "smollm2-135m-instruct" / "model.gguf"
    if not real.is_file():
        pytest.skip(f"the real SmolLM2-135M-Instruct GGUF is not in loraguard's model cache ({real})")
    name = "HuggingFaceTB/SmolLM2-135M-Instruct"
    linked = tmp_path / "gguf" / "HuggingFaceTB__SmolLM2-135M-Instruct" / "model.gguf"
    linked.parent.mkdir(parents=True)
    linked.symlink_to(real)  # the folder names the model, as for config.json
    configs = [write_config(tmp_path / "catalog" / "HuggingFaceTB__SmolLM2-135M-Instruct", find_entry(name).config)]  # type: ignore[union-attr]
    converted = real.parent / "hf" / "config.json"  # transformers' own GGUF -> config.json, when cached
    if converted.is_file():
        folder = tmp_path / "converted" / "HuggingFaceTB__SmolLM2-135M-Instruct"
        folder.mkdir(parents=True)
        shutil.copy(converted, folder / "config.json")
        configs.append(folder)
    spec = resolve_base(configs[0])
    healthy = write_lora(tmp_path / "healthy", adapter_shapes(spec), claim=name)
    wrong = write_lora(tmp_path / "wrong", adapter_shapes(spec, widen=64), claim=name)
    for adapter in (healthy, wrong):
        on_gguf = comparable(check(adapter, linked))
        for folder in configs:
            assert on_gguf == comparable(check(adapter, folder)), (adapter.name, folder)
    assert check(healthy, real).verdict == "pass"  # the cache's own path: named after its folder
    assert check(wrong, real).verdict == "fail"


def test_cli_check_with_a_gguf_base_never_imports_torch(tmp_path: Path) -> None:
    folder, gguf = pair(tmp_path, "Qwen/Qwen2.5-0.5B-Instruct")
    adapter = write_lora(tmp_path / "ad", adapter_shapes(resolve_base(folder)), claim="Qwen/Qwen2.5-0.5B-Instruct")
    code = (
        "import sys; from loraguard.cli.app import main;"
        " rc = main(['check', sys.argv[1], '--base', sys.argv[2], '--format', 'json']);"
        " print('HEAVY', [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]); sys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(adapter), str(gguf.parent)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    report, heavy = proc.stdout.rsplit("HEAVY", 1)
    assert heavy.strip() == "[]"
    data = json.loads(report)
    assert data["verdict"] == "pass" and data["base"]["source"] == "gguf" and data["base"]["num_layers"] == 24


def test_matrix_takes_a_gguf_base(tmp_path: Path, capsys) -> None:
    from loraguard.cli.app import main

    folder, gguf = pair(tmp_path, "Qwen/Qwen2.5-0.5B-Instruct")
    spec = resolve_base(folder)
    adapters = tmp_path / "adapters"
    write_lora(adapters / "good", adapter_shapes(spec), claim=spec.name)
    write_lora(adapters / "bad", adapter_shapes(spec, widen=64), claim=spec.name)
    out = tmp_path / "m.csv"
    assert main(["matrix", str(adapters), "--base", str(gguf), "--base", str(folder), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    verdicts = {(Path(r["adapter"]).name, r["base"]): r["verdict"] for r in rows}
    assert verdicts == {
        ("bad", str(gguf)): "fail",
        ("bad", str(folder)): "fail",
        ("good", str(gguf)): "pass",
        ("good", str(folder)): "pass",
    }
    capsys.readouterr()
    assert main(["matrix", str(adapters), "--base", str(tmp_path / "nope.gguf"), "--out", str(tmp_path / "x.csv")]) == 2


def test_registry_add_checks_against_a_gguf_base(tmp_path: Path) -> None:
    pytest.importorskip("sqlalchemy")
    from loraguard.errors import AdapterRejectedError
    from loraguard.registry import Registry, admit

    folder, gguf = pair(tmp_path, "Qwen/Qwen2.5-0.5B-Instruct")
    spec = resolve_base(folder)
    with Registry(f"sqlite:///{tmp_path / 'r.db'}", lock_timeout=5) as registry:
        entry = admit(
            registry, "tox", write_lora(tmp_path / "good", adapter_shapes(spec), claim=spec.name), base=str(gguf)
        )
        assert entry.base == str(gguf.resolve()) and entry.check_report["base"]["source"] == "gguf"
        with pytest.raises(AdapterRejectedError, match="shape-mismatch"):
            admit(
                registry,
                "tox",
                write_lora(tmp_path / "bad", adapter_shapes(spec, widen=64), claim=spec.name),
                base=str(gguf),
            )
