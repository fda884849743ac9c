"""catalog.json, catalog.py and scripts/build_catalog.py."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import pytest

from loraguard.basemodel.catalog import CatalogEntry, catalog_names, catalog_spec, find_entry, load_catalog
from loraguard.basemodel.families import spec_from_config
from loraguard.basemodel.spec import ModuleShape

REPO = Path(__file__).resolve().parents[2]
SOURCES = REPO / "scripts" / "catalog_sources"

REQUIRED = [
    "Qwen/Qwen2-0.5B",
    "Qwen/Qwen2-1.5B",
    "Qwen/Qwen2-7B",
    *(f"Qwen/Qwen2.5-{size}{sfx}" for size in ("0.5B", "1.5B", "3B", "7B", "14B", "32B") for sfx in ("", "-Instruct")),
    *(f"Qwen/Qwen3-{size}" for size in ("0.6B", "1.7B", "4B", "8B", "14B")),
    "Qwen/Qwen3-4B-Instruct-2507",
    "meta-llama/Llama-2-7b-hf",
    "meta-llama/Llama-2-13b-hf",
    "meta-llama/Meta-Llama-3-8B",
    "meta-llama/Meta-Llama-3-8B-Instruct",
    "meta-llama/Llama-3.1-8B",
    "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Llama-3.2-1B",
    "meta-llama/Llama-3.2-1B-Instruct",
    "meta-llama/Llama-3.2-3B",
    "meta-llama/Llama-3.2-3B-Instruct",
    "mistralai/Mistral-7B-v0.1",
    "mistralai/Mistral-7B-Instruct-v0.2",
    "mistralai/Mistral-7B-Instruct-v0.3",
    "google/gemma-2b",
    "google/gemma-2b-it",
    "google/gemma-7b",
    "google/gemma-7b-it",
    "google/gemma-2-2b",
    "google/gemma-2-2b-it",
    "google/gemma-2-9b",
    "google/gemma-2-9b-it",
    "google/gemma-3-270m",
    "google/gemma-3-270m-it",
    "google/gemma-3-1b-pt",
    "google/gemma-3-1b-it",
    "microsoft/phi-2",
    "microsoft/Phi-3-mini-4k-instruct",
    "microsoft/Phi-3-mini-128k-instruct",
    "microsoft/phi-4",
    "HuggingFaceTB/SmolLM2-135M",
    "HuggingFaceTB/SmolLM2-360M",
    "HuggingFaceTB/SmolLM2-1.7B",
    "HuggingFaceTB/SmolLM2-135M-Instruct",
    "HuggingFaceTB/SmolLM2-360M-Instruct",
    "HuggingFaceTB/SmolLM2-1.7B-Instruct",
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
    "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
    "openai-community/gpt2",
    "openai-community/gpt2-medium",
    "distilbert/distilgpt2",
    # issue 13: encoders, encoder-decoders, more decoder families
    "google-bert/bert-base-uncased",
    "distilbert/distilbert-base-uncased",
    "FacebookAI/roberta-base",
    "microsoft/deberta-v3-base",
    "google-t5/t5-small",
    "google/flan-t5-base",
    "facebook/bart-large",
    "openai/whisper-small",
    "Qwen/Qwen2.5-VL-7B-Instruct",
    "HuggingFaceTB/SmolLM-135M-Instruct",
    "mistralai/Mistral-Nemo-Base-2407",
    "microsoft/Phi-3.5-mini-instruct",
    "microsoft/Phi-4-mini-instruct",
]
SOURCE = re.compile(r"^(https://huggingface\.co/\S+/config\.json|github:[\w.-]+/[\w.-]+@[0-9a-f]{40}:\S+)( \(.+\))?$")
"""Where an excerpt's config.json was read: the Hub, or `github:owner/repo@commit:path (how)`."""


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_catalog", REPO / "scripts" / "build_catalog.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_catalog_has_every_required_model_and_more_than_40() -> None:
    names = set(catalog_names())
    assert len(names) >= 40
    assert len(names) == len(load_catalog())  # no duplicates
    missing = [name for name in REQUIRED if name not in names]
    assert not missing


@pytest.mark.parametrize(
    ("name", "hidden", "layers", "heads", "kv", "head_dim", "inter", "vocab", "params_b"),
    [
        ("Qwen/Qwen3-4B", 2560, 36, 32, 8, 128, 9728, 151936, 4.02),
        ("Qwen/Qwen3-1.7B", 2048, 28, 16, 8, 128, 6144, 151936, 1.72),
        ("Qwen/Qwen2.5-1.5B", 1536, 28, 12, 2, 128, 8960, 151936, 1.54),
        ("Qwen/Qwen2.5-0.5B-Instruct", 896, 24, 14, 2, 64, 4864, 151936, 0.49),
        ("Qwen/Qwen2.5-7B-Instruct", 3584, 28, 28, 4, 128, 18944, 152064, 7.62),
        ("meta-llama/Llama-3.2-1B", 2048, 16, 32, 8, 64, 8192, 128256, 1.24),
        ("meta-llama/Llama-3.1-8B-Instruct", 4096, 32, 32, 8, 128, 14336, 128256, 8.03),
        ("mistralai/Mistral-7B-Instruct-v0.2", 4096, 32, 32, 8, 128, 14336, 32000, 7.24),
        ("google/gemma-2b-it", 2048, 18, 8, 1, 256, 16384, 256000, 2.51),
        ("google/gemma-3-270m-it", 640, 18, 4, 1, 256, 2048, 262144, 0.27),
        ("HuggingFaceTB/SmolLM2-360M", 960, 32, 15, 5, 64, 2560, 49152, 0.36),
        ("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", 1536, 28, 12, 2, 128, 8960, 151936, 1.78),
    ],
)
def test_catalog_dimensions(
    name: str, hidden: int, layers: int, heads: int, kv: int, head_dim: int, inter: int, vocab: int, params_b: float
) -> None:
    entry = find_entry(name)
    assert entry is not None
    spec = catalog_spec(entry)
    assert spec.source == "catalog" and spec.name == name
    sig = spec.layer_signature()
    assert (spec.hidden_size, spec.num_layers, spec.vocab_size) == (hidden, layers, vocab)
    assert sig["self_attn.q_proj"] == ModuleShape(hidden, heads * head_dim)
    assert sig["self_attn.k_proj"] == ModuleShape(hidden, kv * head_dim)
    assert sig["mlp.down_proj"] == ModuleShape(inter, hidden)
    assert entry.params == spec.param_count
    assert entry.params / 1e9 == pytest.approx(params_b, abs=0.01)


def test_find_entry_is_case_insensitive_on_full_id_or_bare_name() -> None:
    assert find_entry("qwen2.5-1.5b-instruct") == find_entry("Qwen/Qwen2.5-1.5B-Instruct")
    entry = find_entry("QWEN/QWEN2.5-1.5B-INSTRUCT")
    assert entry is not None and entry.name == "Qwen/Qwen2.5-1.5B-Instruct"
    assert entry.family == "qwen2.5" and entry.variant == "instruct" and entry.model_type == "qwen2"
    gpt2 = find_entry("gpt2")
    assert gpt2 is not None and gpt2.name == "openai-community/gpt2"
    assert find_entry("someone-else/Qwen2.5-1.5B-Instruct") is None  # another org may be anything
    assert find_entry("Qwen2.5-1.5B-Instruct-GPTQ-Int4") is None
    assert find_entry("") is None


def test_entries_are_read_only_and_hashable() -> None:
    entry = load_catalog()[0]
    assert isinstance(entry, CatalogEntry)
    with pytest.raises(TypeError):
        entry.config["hidden_size"] = 1  # type: ignore[index]
    assert catalog_spec(entry) is catalog_spec(entry)  # cached by entry


def test_variants_and_families_are_sane() -> None:
    for entry in load_catalog():
        assert entry.variant in {"base", "instruct"}, entry.name
        assert entry.family and entry.source
        lowered = entry.short_name.lower()
        if lowered.endswith(("-instruct", "-it", "-chat-hf")) or "chat" in lowered:
            assert entry.variant == "instruct", entry.name
        if lowered.endswith("-base") and entry.derivable:  # encoders' "-base" is a size (flan-t5-base)
            assert entry.variant == "base", entry.name


def test_every_excerpt_is_well_formed_and_sourced() -> None:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    script = _load_script()
    files = sorted(SOURCES.glob("*.json"))
    assert len(files) == len(load_catalog())
    meta = {"_name", "_source", "_family", "_variant"}
    for path in files:
        excerpt = json.loads(path.read_text())
        name = excerpt["_name"]
        assert path.name == name.replace("/", "__") + ".json"
        assert SOURCE.match(excerpt["_source"]), (path.name, excerpt["_source"])
        if excerpt["_source"].startswith("https://huggingface.co/"):
            assert excerpt["_source"] == f"https://huggingface.co/{name}/blob/main/config.json"
        config = {k: v for k, v in excerpt.items() if k not in meta}
        assert not {k for k in excerpt if k.startswith("_")} - meta, path.name
        if script.derivable(config):  # config-derived family: only its architecture keys
            assert set(config) <= set(script.MINIMAL_KEYS), (path.name, set(config) - set(script.MINIMAL_KEYS))
            assert spec_from_config(excerpt, name=name) is not None, path.name
        else:  # skeleton-built: the whole config but names, dates and generation settings
            assert config["model_type"] in CONFIG_MAPPING_NAMES, path.name
            assert not set(config) & script.SKELETON_DROP, (path.name, set(config) & script.SKELETON_DROP)
            assert config == script.minimal_config(config), path.name


@pytest.mark.shared
def test_excerpts_agree_with_the_real_configs(shared_dir: Path) -> None:
    """Where a real config.json exists, the hand-written excerpt gives exactly the same model."""
    compared = 0
    for folder in sorted((shared_dir / "corpus" / "base-configs").iterdir()):
        excerpt_path = SOURCES / f"{folder.name}.json"
        if not excerpt_path.is_file():
            continue
        real = json.loads((folder / "config.json").read_text())
        excerpt = json.loads(excerpt_path.read_text())
        script = _load_script()
        if not script.derivable(real):  # skeleton-built: the same architecture keys
            meta = {"_name", "_source", "_family", "_variant"}
            assert script.minimal_config(real) == {k: v for k, v in excerpt.items() if k not in meta}, folder.name
            compared += 1
            continue
        from_real = spec_from_config(real, name="x")
        from_excerpt = spec_from_config(excerpt, name="x")
        assert from_real is not None and from_excerpt is not None
        assert dict(from_real.modules) == dict(from_excerpt.modules), folder.name
        assert from_real.param_count == from_excerpt.param_count, folder.name
        compared += 1
    assert compared >= 10


@pytest.mark.shared
def test_build_script_reproduces_the_committed_catalog(shared_dir: Path, tmp_path: Path) -> None:
    script = _load_script()
    out = tmp_path / "catalog.json"
    assert script.main([str(shared_dir / "corpus" / "base-configs"), "--out", str(out)]) == 0
    committed = (REPO / "src" / "loraguard" / "basemodel" / "catalog.json").read_text()
    assert out.read_text() == committed
    assert script.main([str(shared_dir / "corpus" / "base-configs"), "--out", str(out), "--check"]) == 0
    out.write_text(committed.replace('"params": 4022468096', '"params": 1'))
    assert script.main([str(shared_dir / "corpus" / "base-configs"), "--out", str(out), "--check"]) == 1
    document = json.loads(committed)
    real_sourced = [m["name"] for m in document["models"] if m["source"].startswith("shared corpus")]
    assert "Qwen/Qwen2.5-1.5B-Instruct" in real_sourced and "meta-llama/Llama-3.2-3B" in real_sourced


def test_build_without_real_configs_uses_the_excerpts(tmp_path: Path) -> None:
    script = _load_script()
    out = tmp_path / "catalog.json"
    empty = tmp_path / "no-configs"
    empty.mkdir()
    assert script.main([str(empty), "--out", str(out)]) == 0
    models = json.loads(out.read_text())["models"]
    assert len(models) == len(load_catalog())
    by_name = {m["name"]: m for m in models}
    assert by_name["Qwen/Qwen3-4B"]["params"] == pytest.approx(4.02e9, rel=0.005)
    assert by_name["Qwen/Qwen3-4B"]["config"]["head_dim"] == 128
    sources = {json.loads(p.read_text())["_name"]: json.loads(p.read_text())["_source"] for p in SOURCES.glob("*.json")}
    assert all(m["source"] == sources[m["name"]] for m in models)
    assert set(by_name["openai-community/gpt2"]["config"]) <= set(script.MINIMAL_KEYS)


@pytest.mark.slow
def test_skeleton_params_leave_the_excerpt_as_its_source_wrote_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gemma 4's vision config class rewrites the nested rope_parameters it is given: a cold skeleton
    cache must not change what the build writes."""
    pytest.importorskip("torch")
    monkeypatch.setenv("LORAGUARD_CACHE", str(tmp_path / "cold"))
    script = _load_script()
    excerpt = json.loads((SOURCES / "google__gemma-4-E4B-it.json").read_text())
    minimal = script.minimal_config({k: v for k, v in excerpt.items() if not k.startswith("_")})
    before = json.dumps(minimal, sort_keys=True)
    assert minimal["vision_config"]["rope_parameters"]["rope_type"] == "default"
    params = script._params(excerpt["_name"], minimal)
    assert params == next(entry.params for entry in load_catalog() if entry.name == excerpt["_name"])
    assert json.dumps(minimal, sort_keys=True) == before
