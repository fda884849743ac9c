"""skeleton.py: any transformers architecture on the meta device, cached as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loraguard.basemodel import skeleton
from loraguard.basemodel.skeleton import cache_path, spec_from_skeleton
from loraguard.basemodel.spec import ModuleShape
from loraguard.errors import BaseModelResolutionError, MissingExtraError

BERT = {
    "model_type": "bert",
    "architectures": ["BertForMaskedLM"],
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_attention_heads": 4,
    "num_hidden_layers": 3,
    "vocab_size": 100,
    "id2label": {"0": "neg", "1": "neu", "2": "pos"},
}
DISTILBERT = {"model_type": "distilbert", "dim": 32, "hidden_dim": 64, "n_heads": 4, "n_layers": 2, "vocab_size": 90}
T5 = {
    "model_type": "t5",
    "d_model": 32,
    "d_ff": 64,
    "num_heads": 4,
    "d_kv": 8,
    "num_layers": 2,
    "num_decoder_layers": 3,
    "vocab_size": 110,
}
ROBERTA = {
    "model_type": "roberta",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "vocab_size": 120,
}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "lgcache"
    monkeypatch.setenv("LORAGUARD_CACHE", str(cache))
    return cache


@pytest.mark.slow
def test_bert_seq_cls_lists_every_linear_and_embedding() -> None:
    spec = spec_from_skeleton(BERT, name="tiny-bert", task="SEQ_CLS", path="/x/config.json")
    assert spec.architecture == "BertForSequenceClassification"
    assert spec.source == "skeleton" and spec.path == "/x/config.json" and spec.name == "tiny-bert"
    assert spec.layer_prefixes == ("bert.encoder.layer",)
    assert spec.num_layers == 3 and spec.hidden_size == 32 and spec.vocab_size == 100
    assert spec.modules["bert.encoder.layer.2.attention.self.query"] == ModuleShape(32, 32)
    assert spec.modules["bert.encoder.layer.0.intermediate.dense"] == ModuleShape(32, 64)
    assert spec.modules["bert.encoder.layer.0.output.dense"] == ModuleShape(64, 32)
    assert spec.modules["bert.embeddings.word_embeddings"] == ModuleShape(100, 32, "embedding")
    assert spec.modules["classifier"] == ModuleShape(32, 3)
    assert "bert.encoder.layer.3.attention.self.query" not in spec.modules
    assert spec.layer_signature()["attention.self.value"] == ModuleShape(32, 32)


@pytest.mark.slow
def test_distilbert_and_roberta() -> None:
    distil = spec_from_skeleton(DISTILBERT, name="d", task="SEQ_CLS")
    assert distil.layer_prefixes == ("distilbert.transformer.layer",)
    assert distil.modules["distilbert.transformer.layer.1.attention.q_lin"] == ModuleShape(32, 32)
    assert distil.modules["pre_classifier"] == ModuleShape(32, 32)
    assert distil.modules["classifier"] == ModuleShape(32, 2)
    roberta = spec_from_skeleton(ROBERTA, name="r", task="CAUSAL_LM")
    assert roberta.architecture == "RobertaForCausalLM"
    assert roberta.modules["roberta.encoder.layer.1.attention.self.value"] == ModuleShape(32, 32)
    assert roberta.modules["lm_head.decoder"] == ModuleShape(32, 120)


@pytest.mark.slow
def test_t5_has_two_stacks_and_nested_module_lists_are_not_stacks() -> None:
    spec = spec_from_skeleton(T5, name="t5", task="SEQ_2_SEQ_LM")
    assert spec.architecture == "T5ForConditionalGeneration"
    assert spec.layer_prefixes == ("encoder.block", "decoder.block")
    assert spec.num_layers == 3  # the longer stack
    assert spec.modules["decoder.block.2.layer.1.EncDecAttention.q"] == ModuleShape(32, 32)
    assert spec.modules["encoder.block.1.layer.1.DenseReluDense.wi"] == ModuleShape(32, 64)
    sig = spec.layer_signature()
    assert sig["encoder.block/layer.0.SelfAttention.v"] == ModuleShape(32, 32)
    assert "decoder.block/layer.1.EncDecAttention.k" in sig


@pytest.mark.slow
def test_task_without_an_auto_class_falls_back_to_architectures() -> None:
    """DistilBERT has no causal LM: PEFT wrapped whatever the user loaded, named in `architectures`."""
    config = {**DISTILBERT, "architectures": ["DistilBertForSequenceClassification"]}
    spec = spec_from_skeleton(config, name="d", task="CAUSAL_LM")
    assert spec.architecture == "DistilBertForSequenceClassification"
    bare = spec_from_skeleton(DISTILBERT, name="d", task="FEATURE_EXTRACTION")
    assert bare.architecture == "DistilBertModel"
    assert "classifier" not in bare.modules and bare.layer_prefixes == ("transformer.layer",)


@pytest.mark.slow
def test_second_call_reads_the_cache(monkeypatch: pytest.MonkeyPatch, _private_cache: Path) -> None:
    first = spec_from_skeleton(BERT, name="first", task="SEQ_CLS")
    files = list((_private_cache / "skeletons").glob("*.json"))
    assert len(files) == 1

    def no_build(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("rebuilt instead of reading the cache")

    monkeypatch.setattr(skeleton, "_build_skeleton", no_build)
    second = spec_from_skeleton({**BERT, "_name_or_path": "elsewhere"}, name="second", task="SEQ_CLS")
    assert second.name == "second"
    assert dict(second.modules) == dict(first.modules)
    assert (second.layer_prefixes, second.param_count) == (first.layer_prefixes, first.param_count)
    with pytest.raises(AssertionError, match="rebuilt"):  # the task is part of the key
        spec_from_skeleton(BERT, name="x", task="TOKEN_CLS")
    with pytest.raises(AssertionError, match="rebuilt"):  # and so is the architecture
        spec_from_skeleton({**BERT, "num_hidden_layers": 4}, name="x", task="SEQ_CLS")


@pytest.mark.slow
def test_cached_spec_does_not_import_torch(_private_cache: Path) -> None:
    spec_from_skeleton(T5, name="t5", task="SEQ_2_SEQ_LM")
    code = (
        "import sys, json\n"
        "from loraguard.basemodel.skeleton import spec_from_skeleton\n"
        f"spec = spec_from_skeleton(json.loads({json.dumps(json.dumps(T5))}), name='t5', task='SEQ_2_SEQ_LM')\n"
        "assert spec.layer_prefixes == ('encoder.block', 'decoder.block'), spec.layer_prefixes\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    env = {**__import__("os").environ, "LORAGUARD_CACHE": str(_private_cache)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_corrupt_cache_file_is_rebuilt(monkeypatch: pytest.MonkeyPatch) -> None:
    target = cache_path(BERT, "SEQ_CLS", skeleton._transformers_version("x"))
    target.parent.mkdir(parents=True)
    target.write_text("{not json")
    record = {
        "format": skeleton.CACHE_FORMAT,
        "model_type": "bert",
        "architecture": "BertForSequenceClassification",
        "modules": {"classifier": [32, 3, "linear"]},
        "num_layers": 3,
        "hidden_size": 32,
        "vocab_size": 100,
        "layer_prefixes": ["bert.encoder.layer"],
        "param_count": 1,
    }
    monkeypatch.setattr(skeleton, "_build_skeleton", lambda *a, **k: record)
    spec = spec_from_skeleton(BERT, name="b", task="SEQ_CLS")
    assert spec.modules == {"classifier": ModuleShape(32, 3)}
    assert json.loads(target.read_text())["modules"] == {"classifier": [32, 3, "linear"]}


def test_missing_torch_raises_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(MissingExtraError, match=r"Checking a bert base needs the 'ml' extra") as info:
        spec_from_skeleton(BERT, name="b", task="SEQ_CLS")
    assert info.value.extra == "ml"


@pytest.mark.slow
def test_remote_code_config_is_refused_cleanly() -> None:
    config = {
        "model_type": "my-custom-arch",
        "architectures": ["MyModelForCausalLM"],
        "auto_map": {"AutoModelForCausalLM": "modeling_my.MyModelForCausalLM"},
        "hidden_size": 64,
    }
    with pytest.raises(BaseModelResolutionError, match="remote code") as info:
        spec_from_skeleton(config, name="someone/custom", task="CAUSAL_LM")
    assert "my-custom-arch" in str(info.value) and "transformers" in str(info.value)
    with pytest.raises(BaseModelResolutionError, match="unknown to transformers"):
        spec_from_skeleton({"model_type": "nonexistent-arch"}, name="x", task="CAUSAL_LM")


@pytest.mark.slow
def test_inconsistent_config_is_a_resolution_error() -> None:
    broken = {**BERT, "hidden_size": 30, "num_attention_heads": 4}  # 30 is not a multiple of 4
    with pytest.raises(BaseModelResolutionError, match=r"cannot build|not a valid"):
        spec_from_skeleton(broken, name="b", task="SEQ_CLS")


@pytest.mark.slow
@pytest.mark.shared
def test_shared_encoder_configs(shared_dir: Path) -> None:
    base = shared_dir / "corpus" / "base-configs"
    t5 = json.loads((base / "google__flan-t5-base" / "config.json").read_text())
    spec = spec_from_skeleton(t5, name="google/flan-t5-base", task="SEQ_2_SEQ_LM")
    assert spec.num_layers == 12 and spec.hidden_size == 768 and spec.vocab_size == 32128
    assert spec.modules["decoder.block.11.layer.1.EncDecAttention.q"] == ModuleShape(768, 768)
    # 247.6M with its own lm_head; transformers 5 always ties T5's head to `shared` (222.9M).
    assert 220e6 < spec.param_count < 250e6
    distil = json.loads((base / "distilbert__distilbert-base-uncased-seqcls" / "config.json").read_text())
    spec = spec_from_skeleton(distil, name="distilbert", task="SEQ_CLS")
    assert spec.modules["classifier"] == ModuleShape(768, 2)
    assert spec.param_count == pytest.approx(66.96e6, rel=0.01)
