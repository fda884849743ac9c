"""Quantized and re-uploaded twins: a sourced alias table, never a guess from the name."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from basemodel_helpers import REPO, load_build_script

from loraguard.basemodel.catalog import find_alias, find_entry, load_catalog, search_catalog
from loraguard.basemodel.resolve import normalize_model_name, resolve_base, resolve_claimed_base
from loraguard.basemodel.spec import ModuleShape

ALIAS_SOURCE = re.compile(
    r"^https://github\.com/(unslothai/unsloth|modelscope/ms-swift)/blob/[0-9a-f]{40}/\S+\.py#L\d+$"
)


def test_every_alias_is_sourced_and_points_to_a_catalog_model() -> None:
    names = {entry.name for entry in load_catalog()}
    aliases = [alias for entry in load_catalog() for alias in entry.aliases]
    assert len(aliases) >= 150
    for alias in aliases:
        assert alias.target in names and alias.name not in names, alias
        assert ALIAS_SOURCE.match(alias.source), alias
    lowered = [alias.name.lower() for alias in aliases]
    assert len(lowered) == len(set(lowered))


@pytest.mark.parametrize(
    ("twin", "original"),
    [
        ("unsloth/llama-3-8b-bnb-4bit", "meta-llama/Meta-Llama-3-8B"),
        ("unsloth/llama-3-8b-Instruct-bnb-4bit", "meta-llama/Meta-Llama-3-8B-Instruct"),
        ("unsloth/meta-llama-3.1-8b-bnb-4bit", "meta-llama/Llama-3.1-8B"),  # Meta renamed Meta-Llama-3.1-*
        ("unsloth/Meta-Llama-3.1-8B-Instruct-bnb-4bit", "meta-llama/Llama-3.1-8B-Instruct"),
        ("unsloth/qwen2.5-7b-instruct-unsloth-bnb-4bit", "Qwen/Qwen2.5-7B-Instruct"),
        ("unsloth/qwen3-14b-unsloth-bnb-4bit", "Qwen/Qwen3-14B"),
        ("unsloth/gemma-2-9b-it-bnb-4bit", "google/gemma-2-9b-it"),
        ("unsloth/Llama-3.2-1B-Instruct", "meta-llama/Llama-3.2-1B-Instruct"),  # 16-bit re-upload
        ("Qwen/Qwen2.5-1.5B-Instruct-GPTQ-Int4", "Qwen/Qwen2.5-1.5B-Instruct"),
        ("Qwen/Qwen2.5-7B-Instruct-AWQ", "Qwen/Qwen2.5-7B-Instruct"),
        ("Qwen/Qwen2-7B-Instruct-GPTQ-Int8", "Qwen/Qwen2-7B-Instruct"),
    ],
)
def test_twins_resolve_to_their_original_architecture(twin: str, original: str) -> None:
    found = find_alias(twin)
    assert found is not None and found[1].name == original
    entry = find_entry(twin)
    assert entry is not None and entry.name == original
    claimed = resolve_claimed_base(twin)
    assert claimed is not None and claimed.name == original and claimed.source == "catalog"
    assert normalize_model_name(twin) == normalize_model_name(original)


def test_unsloth_phi_reuploads_with_another_architecture_are_not_aliased() -> None:
    """The mapper pairs them with Microsoft's Phi, but real adapters on them target unfused q/k/v and
    gate/up projections that Phi3ForCausalLM does not have: no config of theirs, no alias."""
    excluded = json.loads((REPO / "scripts" / "catalog_aliases.json").read_text())["excluded"]["names"]
    assert "unsloth/Phi-3-mini-4k-instruct-bnb-4bit" in excluded
    for name in excluded:
        assert find_alias(name) is None and find_entry(name) is None, name
        assert resolve_claimed_base(name) is None, name
    assert find_entry("microsoft/Phi-3-mini-4k-instruct") is not None


def test_hub_ids_outside_the_catalog_are_not_guessed_from_their_name() -> None:
    assert resolve_claimed_base("someone/Qwen2.5-1.5B-Instruct-bnb-4bit") is None
    assert resolve_claimed_base("TheBloke/Mistral-7B-Instruct-v0.2-GPTQ") is None
    # a bare name or a local folder is all there is to go by: still matched loosely
    local = resolve_claimed_base("/root/models/Qwen2.5-1.5B-Instruct")
    assert local is not None and local.name == "Qwen/Qwen2.5-1.5B-Instruct"
    bare = resolve_claimed_base("gemma3-270m-it")
    assert bare is not None and bare.name == "google/gemma-3-270m-it"


def test_modelscope_and_hf_cache_paths_resolve() -> None:
    modelscope = "/kaggle/input/qwen25-15b-weights/qwen_files/Qwen/Qwen2___5-1___5B-Instruct"
    spec = resolve_claimed_base(modelscope)
    assert spec is not None and spec.name == "Qwen/Qwen2.5-1.5B-Instruct"
    assert normalize_model_name(modelscope) == "qwen2.5-1.5b-instruct"
    relative = resolve_claimed_base("Qwen/Qwen2___5-1___5B-Instruct")  # ModelScope cache under the working folder
    assert relative is not None and relative.name == "Qwen/Qwen2.5-1.5B-Instruct"
    assert normalize_model_name("unsloth/mistral-7b-bnb-4bit") == "mistral-7b-v0.1"
    cache = (
        "/content/llama3_model/models--meta-llama--Meta-Llama-3-8B/snapshots/8cde5ca8380496c9a6cc7ef3a8b46a0372a1d920"
    )
    spec = resolve_claimed_base(cache)
    assert spec is not None and spec.name == "meta-llama/Meta-Llama-3-8B"
    assert resolve_claimed_base("/home/u/hub/models--nobody--nothing/snapshots/abc") is None


def test_a_twin_given_as_the_base_keeps_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a catalog alias must not download")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    spec = resolve_base("unsloth/mistral-7b-bnb-4bit")
    original = resolve_base("mistralai/Mistral-7B-v0.1")
    assert spec.name == "unsloth/mistral-7b-bnb-4bit" and spec.source == "catalog"
    assert dict(spec.modules) == dict(original.modules)
    assert spec.modules["model.layers.0.self_attn.k_proj"] == ModuleShape(4096, 1024)


def test_search_matches_name_family_and_alias() -> None:
    assert {e.name for e in search_catalog("SMOLLM")} >= {
        "HuggingFaceTB/SmolLM-135M-Instruct",
        "HuggingFaceTB/SmolLM2-135M",
    }
    assert [e.name for e in search_catalog("unsloth/llama-3-8b-bnb-4bit")] == ["meta-llama/Meta-Llama-3-8B"]
    assert {e.family for e in search_catalog("whisper")} == {"whisper"}
    assert search_catalog("") == load_catalog()
    assert search_catalog("no-such-model-anywhere") == ()


def test_alias_table_is_validated_by_the_build(tmp_path: Path) -> None:
    script = load_build_script()
    entries = [{"name": "Qwen/Qwen2.5-0.5B"}]
    table = tmp_path / "aliases.json"
    table.write_text(json.dumps({"aliases": [{"name": "x/y", "target": "Qwen/Qwen9", "source": "s"}]}))
    with pytest.raises(SystemExit, match="not in the catalog"):
        script.aliases(entries, table)
    table.write_text(
        json.dumps({"aliases": [{"name": "qwen/qwen2.5-0.5b", "target": "Qwen/Qwen2.5-0.5B", "source": "s"}]})
    )
    with pytest.raises(SystemExit, match="catalog name or appears twice"):
        script.aliases(entries, table)
    table.write_text(json.dumps({"aliases": [{"name": "x/y", "target": "qwen/qwen2.5-0.5b", "source": ""}]}))
    with pytest.raises(SystemExit, match="no source"):
        script.aliases(entries, table)
    table.write_text(json.dumps({"aliases": [{"name": "x/y", "target": "qwen/qwen2.5-0.5b", "source": "s"}]}))
    assert script.aliases(entries, table) == [{"name": "x/y", "target": "Qwen/Qwen2.5-0.5B", "source": "s"}]


def _write_adapter(folder: Path, claim: str, shapes: dict[str, tuple[int, int]], rank: int = 2) -> Path:
    folder.mkdir(parents=True)
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": rank}
    config |= {"target_modules": sorted({m.rsplit(".", 1)[-1] for m in shapes}), "base_model_name_or_path": claim}
    (folder / "adapter_config.json").write_text(json.dumps(config))
    header: dict[str, Any] = {}
    blobs, offset = [], 0
    rng = np.random.default_rng(0)
    for module, (fan_in, fan_out) in shapes.items():
        for part, shape in (("lora_A", (rank, fan_in)), ("lora_B", (fan_out, rank))):
            raw = rng.standard_normal(shape).astype(np.float32).tobytes()
            name = f"base_model.model.{module}.{part}.weight"
            header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
            offset += len(raw)
            blobs.append(raw)
    text = json.dumps(header).encode()
    (folder / "adapter_model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    return folder


def test_quantization_variant_still_reported_for_twins(tmp_path: Path) -> None:
    from loraguard.checks.checker import check

    shapes = {"model.layers.0.self_attn.q_proj": (4096, 4096), "model.layers.31.self_attn.v_proj": (4096, 1024)}
    adapter = _write_adapter(tmp_path / "on-unsloth", "unsloth/mistral-7b-bnb-4bit", shapes)
    report = check(adapter, "mistralai/Mistral-7B-v0.1")
    assert "quantization-variant" in report.categories(), report.to_json()
    assert not {"claimed-base-mismatch", "base-version-mismatch", "shape-mismatch"} & report.categories()
    same = check(adapter, "unsloth/mistral-7b-bnb-4bit")
    assert "quantization-variant" not in same.categories() and same.base is not None
    assert same.base["name"] == "unsloth/mistral-7b-bnb-4bit"
    claimed_only = check(adapter)
    assert claimed_only.base is not None and claimed_only.base["name"] == "mistralai/Mistral-7B-v0.1"
    assert "shape-mismatch" not in claimed_only.categories()


def test_modelscope_claim_gives_no_false_size_hint(tmp_path: Path) -> None:
    from loraguard.checks.checker import check

    shapes = {"model.layers.0.self_attn.q_proj": (1536, 1536), "model.layers.27.self_attn.v_proj": (1536, 256)}
    claim = "/kaggle/input/qwen25-15b-weights/qwen_files/Qwen/Qwen2___5-1___5B-Instruct"
    report = check(_write_adapter(tmp_path / "qwen-lora", claim, shapes))
    assert report.base is not None and report.base["name"] == "Qwen/Qwen2.5-1.5B-Instruct"
    assert "name-hint-conflict" not in report.categories(), report.to_json()
    wrong = check(_write_adapter(tmp_path / "qwen-7b-lora", claim, shapes), "Qwen/Qwen2.5-7B-Instruct")
    assert "name-hint-conflict" in wrong.categories()  # 1.5B named, 7.6B given: still caught
