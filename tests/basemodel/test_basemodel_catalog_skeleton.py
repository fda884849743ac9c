"""Catalog models `families.py` does not derive (BERT, T5, Whisper, vision-language...) resolve offline
through a transformers skeleton built from their catalog config alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loraguard.basemodel.catalog import catalog_spec, find_entry, load_catalog
from loraguard.basemodel.infer import infer_bases
from loraguard.basemodel.resolve import resolve_base, resolve_claimed_base
from loraguard.basemodel.spec import ModuleShape


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LORAGUARD_CACHE", str(tmp_path / "cache"))
    catalog_spec.cache_clear()  # specs memoised by an earlier test on this worker would skip the skeleton cache
    return tmp_path / "cache"


def test_the_issue_13_families_are_in_the_catalog() -> None:
    families = {entry.family for entry in load_catalog()}
    assert families >= {
        "bert", "distilbert", "roberta", "deberta-v3", "t5", "flan-t5", "bart", "whisper",
        "qwen2.5-vl", "smollm", "mistral-nemo", "phi3.5", "phi4-mini", "llama3.1", "nllb-200",
    }  # fmt: skip
    skeleton = [entry for entry in load_catalog() if not entry.derivable]
    assert len(skeleton) >= 15 and all(entry.config.get("model_type") for entry in skeleton)


@pytest.mark.slow
def test_encoder_claims_resolve_through_the_skeleton(cache: Path) -> None:
    pytest.importorskip("torch")
    bert = resolve_claimed_base("bert-base-uncased", task="SEQ_CLS")
    assert bert is not None and bert.name == "google-bert/bert-base-uncased" and bert.source == "catalog"
    assert bert.architecture == "BertForSequenceClassification"
    assert bert.modules["bert.encoder.layer.11.attention.self.query"] == ModuleShape(768, 768)
    distil = resolve_claimed_base("distilbert-base-uncased", task="SEQ_CLS")
    assert distil is not None and distil.modules["distilbert.transformer.layer.5.attention.q_lin"] == ModuleShape(
        768, 768
    )
    t5 = resolve_claimed_base("t5-small", task="SEQ_2_SEQ_LM")
    assert t5 is not None and t5.layer_prefixes == ("encoder.block", "decoder.block")
    assert t5.modules["decoder.block.5.layer.1.EncDecAttention.q"] == ModuleShape(512, 512)
    assert list(cache.glob("skeletons/*.json"))  # cached: the next check does not import torch


@pytest.mark.slow
def test_whisper_decoder_and_vl_text_model_resolve(cache: Path) -> None:
    pytest.importorskip("torch")
    whisper = resolve_base("openai/whisper-large-v3-turbo", task=None)
    assert whisper.num_layers == 32 and whisper.source == "catalog"
    assert whisper.modules["model.decoder.layers.3.encoder_attn.q_proj"] == ModuleShape(1280, 1280)
    assert "model.decoder.layers.4.self_attn.q_proj" not in whisper.modules  # 4 decoder layers
    entry = find_entry("Qwen/Qwen2.5-VL-7B-Instruct")
    assert entry is not None and not entry.derivable
    vl = catalog_spec(entry, None)
    text = {name: shape for name, shape in vl.modules.items() if ".language_model.layers.27." in name}
    assert text and ModuleShape(3584, 512) in text.values()  # k_proj: 4 kv heads of 128
    assert entry.params == vl.param_count


@pytest.mark.slow
def test_codegen_paligemma_and_gemma4_claims_resolve_through_the_skeleton(cache: Path) -> None:
    """Claims of the GitHub sample that these entries answer (tests/basemodel/data/claimed_bases.tsv)."""
    pytest.importorskip("torch")
    codegen = resolve_claimed_base("Salesforce/codegen-350M-multi", task="CAUSAL_LM")
    assert codegen is not None and codegen.architecture == "CodeGenForCausalLM" and codegen.num_layers == 20
    assert codegen.modules["transformer.h.19.attn.qkv_proj"] == ModuleShape(1024, 3072)  # fused q, k, v
    pali = resolve_claimed_base("google/paligemma-3b-pt-224", task=None)
    assert pali is not None and pali.architecture == "PaliGemmaForConditionalGeneration"
    assert pali.modules["model.language_model.layers.17.self_attn.k_proj"] == ModuleShape(2048, 256)  # 1 kv head
    assert "model.language_model.layers.18.self_attn.k_proj" not in pali.modules  # 18 text layers
    gemma4 = resolve_claimed_base("google/gemma-4-e4b-it", task=None)  # the claim's spelling
    assert gemma4 is not None and gemma4.name == "google/gemma-4-E4B-it"
    assert gemma4.modules["model.language_model.layers.4.self_attn.k_proj"] == ModuleShape(2560, 512)  # sliding
    assert gemma4.modules["model.language_model.layers.5.self_attn.k_proj"] == ModuleShape(2560, 1024)  # full
    for spec in (codegen, pali, gemma4):
        entry = find_entry(spec.name)
        assert entry is not None and entry.params == spec.param_count


def test_inference_stays_on_config_derived_entries() -> None:
    """Inferring bases from tensor shapes never builds a skeleton (the static path imports no torch)."""
    code = (
        "import sys\n"
        "from loraguard.basemodel.infer import infer_bases\n"
        "found = infer_bases({'self_attn.q_proj': (768, 768)}, max_layer_index=11)\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    derivable = {entry.name for entry in load_catalog() if entry.derivable}
    assert {b.name for b in infer_bases({"self_attn.q_proj": (768, 768)}, max_layer_index=11)} <= derivable
