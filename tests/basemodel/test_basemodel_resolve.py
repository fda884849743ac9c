"""resolve.py: folders, config files, catalog names, Hub ids and quantized names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import huggingface_hub
import huggingface_hub.constants
import pytest
from huggingface_hub.errors import LocalEntryNotFoundError

from loraguard.basemodel.resolve import (
    find_entry_loose,
    normalize_model_name,
    quantization_of,
    resolve_base,
    resolve_claimed_base,
)
from loraguard.basemodel.spec import ModuleShape
from loraguard.errors import BaseModelResolutionError, HubUnavailableError, InputError

QWEN_1_5B = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
    "tie_word_embeddings": True,
}


def _write(folder: Path, config: Any, name: str = "config.json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(config if isinstance(config, str) else json.dumps(config))
    return path


def test_folder_identity_prefers_hub_name_or_path(tmp_path: Path) -> None:
    _write(tmp_path / "anything", {**QWEN_1_5B, "_name_or_path": "Qwen/Qwen2.5-1.5B-Instruct"})
    spec = resolve_base(tmp_path / "anything")
    assert spec.name == "Qwen/Qwen2.5-1.5B-Instruct"
    assert spec.source == "config" and spec.path == str(tmp_path / "anything" / "config.json")
    assert spec.modules["model.layers.27.self_attn.v_proj"] == ModuleShape(1536, 256)


@pytest.mark.parametrize(
    ("folder", "name_or_path", "expected"),
    [
        ("my-finetune", "/home/me/models/qwen", "my-finetune"),
        ("my-finetune", "models/Llama-3.2-1B", "my-finetune"),  # a relative local path, not an org
        ("my-finetune", "", "my-finetune"),
        ("Qwen__Qwen2.5-1.5B", None, "Qwen/Qwen2.5-1.5B"),
        ("microsoft__Phi-3-mini-128k-instruct", "Phi-3-mini-128k-instruct", "microsoft/Phi-3-mini-128k-instruct"),
        ("gpt2-copy", "gpt2", "gpt2"),
    ],
)
def test_folder_identity_fallbacks(tmp_path: Path, folder: str, name_or_path: str | None, expected: str) -> None:
    config = dict(QWEN_1_5B) if name_or_path is None else {**QWEN_1_5B, "_name_or_path": name_or_path}
    _write(tmp_path / folder, config)
    assert resolve_base(str(tmp_path / folder)).name == expected


def test_hub_cache_snapshot_folder_identity(tmp_path: Path) -> None:
    snapshot = tmp_path / "models--Qwen--Qwen2.5-1.5B" / "snapshots" / ("a" * 40)
    path = _write(snapshot, QWEN_1_5B)
    assert resolve_base(path).name == "Qwen/Qwen2.5-1.5B"


def test_config_file_path_is_accepted(tmp_path: Path) -> None:
    path = _write(tmp_path / "m", QWEN_1_5B, name="my-config.json")
    assert resolve_base(path).num_layers == 28


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "not an object"),
        (json.dumps({"model_type": "qwen2", "hidden_size": 64}), "has no 'num_hidden_layers'"),
    ],
)
def test_bad_config_files_name_the_file(tmp_path: Path, content: str, fragment: str) -> None:
    path = _write(tmp_path / "m", content)
    with pytest.raises(BaseModelResolutionError, match=fragment) as info:
        resolve_base(tmp_path / "m")
    assert str(path) in str(info.value)
    assert isinstance(info.value, InputError)


def test_folder_without_config_json(tmp_path: Path) -> None:
    (tmp_path / "weights-only").mkdir()
    with pytest.raises(BaseModelResolutionError, match=r"has no config\.json") as info:
        resolve_base(tmp_path / "weights-only")
    assert "catalog names (`loraguard catalog`)" in str(info.value)


def test_catalog_names_resolve_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the Hub was asked for a catalog model")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    spec = resolve_base("qwen3-4b")
    assert spec.name == "Qwen/Qwen3-4B" and spec.source == "catalog"
    seq = resolve_base("Qwen/Qwen2.5-0.5B-Instruct", task="SEQ_CLS")
    assert "score" in seq.modules and "lm_head" not in seq.modules


def test_hub_id_downloads_only_config_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, str]] = []
    path = _write(tmp_path / "dl", {**QWEN_1_5B, "num_hidden_layers": 5})

    def fake_download(repo_id: str, filename: str, **kwargs: Any) -> str:
        asked.append((repo_id, filename))
        return str(path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    spec = resolve_base("someone/pruned-qwen")
    assert asked == [("someone/pruned-qwen", "config.json")]
    assert spec.name == "someone/pruned-qwen" and spec.num_layers == 5


@pytest.mark.parametrize(
    ("error", "expected", "fragment"),
    [
        (LocalEntryNotFoundError("offline"), HubUnavailableError, "could not be fetched (offline?)"),
        (ConnectionError("DNS"), HubUnavailableError, "could not be fetched (offline?)"),
        (TimeoutError("slow"), HubUnavailableError, "TimeoutError"),
    ],
)
def test_hub_failures_become_clean_errors(
    monkeypatch: pytest.MonkeyPatch, error: Exception, expected: type[Exception], fragment: str
) -> None:
    def failing(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", failing)
    with pytest.raises(expected) as info:
        resolve_base("someone/some-model")
    message = str(info.value)
    assert fragment in message
    assert "Pass a local folder with config.json" in message and "catalog" in message


def test_real_offline_mode_with_empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(HubUnavailableError, match="could not be fetched") as info:
        resolve_base("qwen2.5-1.5b-instruc")  # a typo: not in the catalog, looks like a legacy id
    assert "did you mean Qwen/Qwen2.5-1.5B-Instruct" in str(info.value)


def test_unusable_reference(tmp_path: Path) -> None:
    with pytest.raises(BaseModelResolutionError, match=r"not a folder, a config\.json, a catalog name or a Hub id"):
        resolve_base(str(tmp_path / "missing" / "x y"))
    with pytest.raises(BaseModelResolutionError):
        resolve_base("")


@pytest.mark.slow
def test_multimodal_wrapper_goes_to_the_skeleton(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAGUARD_CACHE", str(tmp_path / "cache"))
    text = {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "num_hidden_layers": 2,
        "vocab_size": 300,
        "head_dim": 16,
    }
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_attention_heads": 2,
        "num_hidden_layers": 1,
        "image_size": 28,
        "patch_size": 14,
    }
    config = {
        "model_type": "gemma3",
        "architectures": ["Gemma3ForConditionalGeneration"],
        "text_config": {**text, "model_type": "gemma3_text"},
        "vision_config": vision,
    }
    _write(tmp_path / "gemma3-mm", config)
    spec = resolve_base(tmp_path / "gemma3-mm")
    assert spec.source == "skeleton" and spec.architecture == "Gemma3ForConditionalGeneration"
    assert "model.language_model.layers" in spec.layer_prefixes
    assert spec.modules["model.language_model.layers.1.self_attn.q_proj"] == ModuleShape(64, 64)


def test_claimed_base_catalog_and_loose_matches() -> None:
    exact = resolve_claimed_base("Qwen/Qwen2.5-0.5B-Instruct")
    assert exact is not None and exact.name == "Qwen/Qwen2.5-0.5B-Instruct"
    quantized = resolve_claimed_base("unsloth/Qwen2.5-1.5B-Instruct-bnb-4bit")
    assert quantized is not None and quantized.name == "Qwen/Qwen2.5-1.5B-Instruct"
    local = resolve_claimed_base("/workspace/svg_logo_task/gemma3-270m")
    assert local is not None and local.name == "google/gemma-3-270m"
    assert local.modules["model.layers.0.self_attn.q_proj"] == ModuleShape(640, 1024)
    assert resolve_claimed_base("nobody/nothing-7b") is None
    assert resolve_claimed_base("") is None


def test_claimed_base_from_the_local_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = tmp_path / "hub"
    revision = "b" * 40
    repo = hub / "models--someone--tiny-qwen"
    _write(repo / "snapshots" / revision, {**QWEN_1_5B, "num_hidden_layers": 3})
    _write(repo / "refs", revision, name="main")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("resolve_claimed_base must not download")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    spec = resolve_claimed_base("someone/tiny-qwen")
    assert spec is not None and spec.name == "someone/tiny-qwen" and spec.num_layers == 3
    assert resolve_claimed_base("someone/not-cached") is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Qwen/Qwen2.5-1.5B-Instruct", "qwen2.5-1.5b-instruct"),
        ("unsloth/Qwen2.5-1.5B-Instruct-bnb-4bit", "qwen2.5-1.5b-instruct"),
        ("Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4", "qwen2.5-7b-instruct"),
        ("Qwen/Qwen2.5-7B-Instruct-GPTQ-Int8", "qwen2.5-7b-instruct"),
        ("Qwen/Qwen2.5-7B-Instruct-AWQ", "qwen2.5-7b-instruct"),
        ("Qwen/Qwen3-14B-MLX-4bit", "qwen3-14b"),
        ("mlx-community/Qwen3-4B-4bit", "qwen3-4b"),
        ("TheBloke/Mistral-7B-Instruct-v0.2-GGUF", "mistral-7b-instruct-v0.2"),
        ("unsloth/Llama-3.2-1B-Instruct-unsloth-bnb-4bit", "llama-3.2-1b-instruct"),
        ("unsloth/Meta-Llama-3.1-8B-Instruct", "llama-3.1-8b-instruct"),
        ("meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b-instruct"),
        ("Qwen/Qwen3-4B", "qwen3-4b"),  # "-4B" is a size, not a bit width
    ],
)
def test_normalize_model_name(name: str, expected: str) -> None:
    assert normalize_model_name(name) == expected


def test_find_entry_loose() -> None:
    entry = find_entry_loose("TheBloke/Mistral-7B-Instruct-v0.2-GGUF")
    assert entry is not None and entry.name == "mistralai/Mistral-7B-Instruct-v0.2"
    entry = find_entry_loose("gemma3-270m-it")
    assert entry is not None and entry.name == "google/gemma-3-270m-it"
    assert find_entry_loose("totally-unknown-model") is None


@pytest.mark.parametrize(
    ("name", "config", "expected"),
    [
        ("Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4", None, "gptq"),
        ("Qwen/Qwen2.5-7B-Instruct-AWQ", None, "awq"),
        ("unsloth/Qwen2.5-1.5B-Instruct-bnb-4bit", None, "bnb"),
        ("unsloth/llama-3-8b-Instruct-4bit", None, "bnb"),
        ("mlx-community/Qwen3-4B-4bit", None, "mlx"),
        ("Qwen/Qwen3-14B-MLX-4bit", None, "mlx"),
        ("TheBloke/Mistral-7B-Instruct-v0.2-GGUF", None, "gguf"),
        ("Qwen/Qwen2.5-1.5B-Instruct", None, None),
        ("Qwen/Qwen3-4B", None, None),
        ("plain", {"quantization_config": {"quant_method": "bitsandbytes", "load_in_8bit": True}}, "bnb"),
        ("plain", {"quantization_config": {"quant_method": "gptq", "bits": 4}}, "gptq"),
        ("plain", {"quantization_config": {"quant_method": "fp8"}}, "fp8"),
        ("plain", {"quantization_config": {"load_in_4bit": True}}, "bnb"),
        ("plain", {"quantization": {"bits": 4}, "quantization_config": {"bits": 4, "group_size": 64}}, "mlx"),
        (None, {"hidden_size": 1}, None),
    ],
)
def test_quantization_of(name: str | None, config: dict[str, Any] | None, expected: str | None) -> None:
    assert quantization_of(name, config) == expected


@pytest.mark.shared
def test_every_shared_base_config_resolves_cleanly(
    shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LORAGUARD_CACHE", str(tmp_path / "cache"))
    root = shared_dir / "corpus" / "base-configs"
    specs = {}
    for folder in sorted(root.iterdir()):
        config = json.loads((folder / "config.json").read_text())
        if folder.name == "microsoft__phi-1_5-legacy-mixformer":
            with pytest.raises(BaseModelResolutionError, match="remote code"):
                resolve_base(folder)
            continue
        if config["model_type"] in {"t5", "distilbert"}:
            continue  # skeleton: test_shared_encoder_configs_resolve_through_the_skeleton
        spec = resolve_base(folder)
        assert spec.num_layers > 0 and spec.hidden_size > 0 and spec.vocab_size > 0, folder.name
        assert spec.param_count > 50e6 and spec.modules and spec.layer_prefixes, folder.name
        specs[folder.name] = spec
    assert specs["Qwen__Qwen2.5-1.5B-Instruct"].name == "Qwen/Qwen2.5-1.5B-Instruct"
    assert specs["meta-llama__Llama-3.2-1B"].name == "meta-llama/Llama-3.2-1B"
    pruned = specs["derived__Llama-3.2-1B-pruned-15layers"]
    assert pruned.num_layers == 15 and pruned.name == "derived/Llama-3.2-1B-pruned-15layers"
    assert pruned.modules["model.layers.14.mlp.up_proj"] == ModuleShape(2048, 8028)
    bnb = specs["meta-llama__Llama-3.1-8B-Instruct-bnb8bit-resave"]
    assert bnb.name == "meta-llama/Llama-3.1-8B-Instruct"
    assert quantization_of(bnb.name, bnb.config) == "bnb"
    mlx = specs["Qwen__Qwen3-14B-MLX-4bit"]
    assert quantization_of(mlx.name, mlx.config) == "mlx"
    assert mlx.modules["model.layers.39.self_attn.q_proj"] == ModuleShape(5120, 5120)
    phi3 = specs["microsoft__Phi-3-mini-128k-instruct"]  # auto_map, but a native model_type
    assert phi3.source == "config" and phi3.modules["model.layers.0.self_attn.qkv_proj"] == ModuleShape(3072, 9216)
    assert len(specs) == 14


@pytest.mark.slow
@pytest.mark.shared
def test_shared_encoder_configs_resolve_through_the_skeleton(
    shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LORAGUARD_CACHE", str(tmp_path / "cache"))
    root = shared_dir / "corpus" / "base-configs"
    t5 = resolve_base(root / "google__flan-t5-base", task="SEQ_2_SEQ_LM")
    assert t5.source == "skeleton" and t5.name == "google/flan-t5-base"
    assert t5.layer_prefixes == ("encoder.block", "decoder.block")
    distil = resolve_base(root / "distilbert__distilbert-base-uncased-seqcls", task="SEQ_CLS")
    assert distil.name == "distilbert-base-uncased-finetuned-sst-2-english"
    assert distil.modules["distilbert.transformer.layer.5.attention.v_lin"] == ModuleShape(768, 768)


def test_resolving_config_families_never_imports_torch(tmp_path: Path) -> None:
    _write(tmp_path / "m", QWEN_1_5B)
    code = (
        "import sys\n"
        "from loraguard.basemodel.resolve import resolve_base, resolve_claimed_base\n"
        "from loraguard.basemodel.infer import infer_bases\n"
        f"assert resolve_base({str(tmp_path / 'm')!r}).num_layers == 28\n"
        "assert resolve_base('gemma-2-9b-it').num_layers == 42\n"
        "assert resolve_claimed_base('unsloth/Qwen3-4B-bnb-4bit').name == 'Qwen/Qwen3-4B'\n"
        "assert infer_bases({'self_attn.q_proj': (2560, 4096)}, max_layer_index=35)\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_importtime_has_no_torch() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import loraguard.basemodel.resolve, loraguard.basemodel.infer"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
    assert "loraguard" in imported
    assert not imported & {"torch", "transformers", "safetensors"}


def test_a_folder_named_like_a_catalog_model_without_config_uses_the_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gpt2").mkdir()  # e.g. a training output folder
    spec = resolve_base("gpt2")
    assert spec.name == "openai-community/gpt2" and spec.source == "catalog"
    _write(tmp_path / "gpt2", {"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4})
    assert resolve_base("gpt2").hidden_size == 64  # a real local model wins


def test_a_resolved_config_is_reused_until_the_file_changes(tmp_path: Path) -> None:
    folder = tmp_path / "qwen"
    path = _write(folder, {**QWEN_1_5B, "_name_or_path": "Qwen/Qwen2.5-1.5B-Instruct"})
    first = resolve_base(folder)
    assert resolve_base(folder) is first  # a matrix resolves each base once, not once per adapter
    assert resolve_base(path) is first  # the folder and its config.json are one file
    assert resolve_base(folder, task="SEQ_CLS") is not first
    path.write_text(json.dumps({**QWEN_1_5B, "num_hidden_layers": 2, "_name_or_path": "Qwen/Qwen2.5-1.5B-Instruct"}))
    edited = resolve_base(folder)
    assert edited.num_layers == 2 and "model.layers.27.self_attn.v_proj" not in edited.modules
    assert first.num_layers == 28  # the earlier spec is unchanged
    assert "model.layers.1.self_attn" in edited.all_names and "self_attn.v_proj" in edited.name_suffixes
