"""The fault-case factory: every case is built, really carries its defect, and (healthy ones) loads with PEFT;
the torch-free (numpy-written) cases are the same files as the ones real PEFT writes.

The cases are built once per test session (per xdist worker). Apart from the comparison of the
torch-free twins, nothing here calls `check`: these tests prove the fixtures, the check tests use
them. Hostile pickles are only ever read with `pickletools`.
"""

from __future__ import annotations

import inspect
import json
import pickletools
import struct
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("peft")

from fault_cases import (
    ALL,
    CATEGORIES,
    CONFIG_ONLY_BASES,
    FAULTS,
    HEALTHY,
    TORCH_FREE,
    BaseFixture,
    BuiltCase,
    build_all,
    build_base,
    case_named,
    expected_categories,
)
from fault_cases import builders as fb
from fault_cases.bases import EXTRA_TOKENS, TINY, TINY_SEQ_CLS, tiny_config
from fault_cases.pickles import MARKER_NAME
from loraguard.errors import OutputExistsError

WEIGHTS = "adapter_model.safetensors"


@pytest.fixture(scope="session")
def factory(tmp_path_factory: pytest.TempPathFactory) -> tuple[BaseFixture, dict[str, BuiltCase], float]:
    workdir = tmp_path_factory.mktemp("faults")
    start = time.perf_counter()
    fx = build_base(workdir, torch=True)
    built = build_all(workdir, fixture=fx)
    return fx, built, time.perf_counter() - start


@pytest.fixture(scope="session")
def built(factory: tuple[BaseFixture, dict[str, BuiltCase], float]) -> dict[str, BuiltCase]:
    return factory[1]


# --- helpers ------------------------------------------------------------------------------------


def shapes(adapter: Path) -> dict[str, list[int]]:
    from safetensors import safe_open

    with safe_open(str(adapter / WEIGHTS), "np") as f:
        return {k: list(f.get_slice(k).get_shape()) for k in f.keys()}


def tensors(adapter: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(adapter / WEIGHTS)


def adapter_config(adapter: Path) -> dict[str, Any]:
    return dict(json.loads((adapter / "adapter_config.json").read_text()))


def base_config(item: BuiltCase) -> dict[str, Any]:
    return dict(json.loads((item.base / "config.json").read_text()))


def layers(adapter: Path) -> set[int]:
    return {int(k.split(".layers.")[1].split(".")[0]) for k in shapes(adapter) if ".layers." in k}


def ranks(adapter: Path, module: str) -> set[int]:
    return {s[0] for k, s in shapes(adapter).items() if f".{module}.lora_A" in k}


def fits_qwen(adapter: Path, cfg: dict[str, Any]) -> bool:
    """Every q/v LoRA tensor fits a Qwen2 config, and every layer is covered."""
    head_dim = cfg["hidden_size"] // cfg["num_attention_heads"]
    out = {"q_proj": cfg["hidden_size"], "v_proj": cfg["num_key_value_heads"] * head_dim}
    for key, shape in shapes(adapter).items():
        module = key.split(".")[-3]
        want = [shape[0], cfg["hidden_size"]] if ".lora_A." in key else [out[module], shape[1]]
        if shape != want:
            return False
    return layers(adapter) == set(range(cfg["num_hidden_layers"]))


def pickle_ops(data: bytes) -> list[tuple[str, Any]]:
    """Opcodes of a pickle, read without executing it."""
    return [(op.name, arg) for op, arg, _ in pickletools.genops(data)]


def calls_os_system(data: bytes) -> bool:
    ops = pickle_ops(data)
    return ("GLOBAL", "os system") in ops and any(name == "REDUCE" for name, _ in ops)


# --- the table ----------------------------------------------------------------------------------


def test_table_is_consistent() -> None:
    names = [case.name for case in ALL]
    assert len(names) == len(set(names))
    for case in ALL:
        assert case.expected <= CATEGORIES and case.tolerated <= CATEGORIES, case.name
        assert not case.expected & case.tolerated, case.name
        assert case.verdict in (None, "pass", "warn", "fail"), case.name
        assert expected_categories(case.name) == case.expected
    assert all(case.healthy and case.verdict == "pass" for case in HEALTHY)
    assert all(case.expected and not case.healthy for case in FAULTS)
    assert set().union(*(case.expected for case in ALL)) == CATEGORIES  # every category has a case
    with pytest.raises(KeyError, match="no fault case named"):
        case_named("no-such-case")


def test_every_case_is_built(factory: tuple[BaseFixture, dict[str, BuiltCase], float]) -> None:
    _, built, seconds = factory
    assert set(built) == {case.name for case in ALL}
    assert seconds < 60, f"building every case took {seconds:.1f}s"
    for name, item in built.items():
        assert item.adapter.is_dir(), name
        assert (item.base / "config.json").is_file(), name
        # PEFT's generated model card is removed: only the provenance case carries one.
        assert (item.adapter / "README.md").exists() == (name == "healthy-with-provenance"), name
    assert sum(f.stat().st_size for f in built["case-study-at-scale"].adapter.iterdir()) < 4_000_000


def test_build_refuses_a_used_folder(factory: tuple[BaseFixture, dict[str, BuiltCase], float], tmp_path: Path) -> None:
    fx = factory[0]
    case = case_named("no-weights-file")
    build_all(tmp_path, [case], fixture=fx)
    with pytest.raises(OutputExistsError):
        build_all(tmp_path, [case], fixture=fx)


def test_build_base_reuses_an_existing_tiny_base(factory: tuple[BaseFixture, dict[str, BuiltCase], float]) -> None:
    first = factory[0].tiny
    workdir = first.parent.parent  # <workdir>/bases/<tiny>
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    again = build_base(workdir)
    assert again.tiny == first and (first / "model.safetensors").stat().st_mtime_ns == stamp
    assert len(again.tokenizer) == len(factory[0].tokenizer)


# --- each case carries its defect (or is what it claims to be) ----------------------------------

PROOFS: dict[str, Callable[[BuiltCase], None]] = {}


def proves(*names: str) -> Callable[[Callable[[BuiltCase], None]], Callable[[BuiltCase], None]]:
    def register(fn: Callable[[BuiltCase], None]) -> Callable[[BuiltCase], None]:
        for name in names:
            PROOFS[name] = fn
        return fn

    return register


@proves("plain-qv", "rslora", "healthy-with-provenance")
def _plain(item: BuiltCase) -> None:
    got = shapes(item.adapter)
    assert len(got) == 8 and ranks(item.adapter, "q_proj") == {8} and layers(item.adapter) == {0, 1}
    assert all(np.abs(v).sum() > 0 for v in tensors(item.adapter).values())
    cfg = adapter_config(item.adapter)
    assert cfg["base_model_name_or_path"] == base_config(item)["_name_or_path"]
    assert cfg["use_rslora"] == (item.case.name == "rslora")
    if item.case.name == "healthy-with-provenance":
        card = (item.adapter / "README.md").read_text()
        assert f"base_model: {cfg['base_model_name_or_path']}\n" in card.split("---")[1]
        assert json.loads((item.adapter / "trainer_state.json").read_text())["global_step"] == 30


@proves("all-linear")
def _all_linear(item: BuiltCase) -> None:
    modules = {k.split(".")[-3] for k in shapes(item.adapter)}
    assert modules == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


@proves("dora")
def _dora(item: BuiltCase) -> None:
    got = shapes(item.adapter)
    assert got["base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector"] == [64]
    assert got["base_model.model.model.layers.0.self_attn.v_proj.lora_magnitude_vector"] == [32]


@proves("rank-alpha-pattern")
def _patterns(item: BuiltCase) -> None:
    assert ranks(item.adapter, "q_proj") == {4} and ranks(item.adapter, "v_proj") == {8}
    assert adapter_config(item.adapter)["rank_pattern"] == {"q_proj": 4}


@proves("modules-to-save-lm-head")
def _lm_head(item: BuiltCase) -> None:
    assert base_config(item)["tie_word_embeddings"] is True
    assert shapes(item.adapter)["base_model.model.lm_head.weight"] == [base_config(item)["vocab_size"], 64]


@proves("layers-to-transform")
def _layer_subset(item: BuiltCase) -> None:
    assert layers(item.adapter) == {1} and adapter_config(item.adapter)["layers_to_transform"] == [1]


@proves("embedding-lora")
def _embedding(item: BuiltCase) -> None:
    got, vocab = shapes(item.adapter), base_config(item)["vocab_size"]
    assert got["base_model.model.model.embed_tokens.lora_embedding_A"] == [8, vocab]
    assert got["base_model.model.model.embed_tokens.lora_embedding_B"] == [64, 8]


@proves("bin-tensors-only")
def _bin(item: BuiltCase) -> None:
    import torch

    path = item.adapter / "adapter_model.bin"
    assert zipfile.is_zipfile(path) and not (item.adapter / WEIGHTS).exists()
    state = torch.load(path, weights_only=True)
    assert len(state) == 8 and all(isinstance(v, torch.Tensor) for v in state.values())


@proves("seq-cls-with-head", "seq-cls-without-head")
def _seq_cls(item: BuiltCase) -> None:
    cfg = adapter_config(item.adapter)
    assert cfg["task_type"] == "SEQ_CLS" and "score" in cfg["modules_to_save"]
    head = shapes(item.adapter).get("base_model.model.score.weight")
    assert head == ([2, 64] if item.case.name == "seq-cls-with-head" else None)


@proves("phi3-fused")
def _phi3(item: BuiltCase) -> None:
    got = shapes(item.adapter)
    assert got["base_model.model.model.layers.0.self_attn.qkv_proj.lora_B.weight"] == [128, 8]  # (4+2+2)×16
    assert got["base_model.model.model.layers.0.mlp.gate_up_proj.lora_B.weight"] == [256, 8]


@proves("gpt2-conv1d")
def _gpt2(item: BuiltCase) -> None:
    got = shapes(item.adapter)
    assert adapter_config(item.adapter)["fan_in_fan_out"] is True
    assert got["base_model.model.transformer.h.1.attn.c_attn.lora_A.weight"] == [8, 64]
    assert got["base_model.model.transformer.h.1.attn.c_attn.lora_B.weight"] == [192, 8]


@proves(
    "catalog-instruct",
    "instruct-on-base-model",
    "newer-on-older-generation",
    "quantized-variant-claimed",
    "name-hint-conflict",
)
def _fits_catalog(item: BuiltCase) -> None:
    claim, base = adapter_config(item.adapter)["base_model_name_or_path"], base_config(item)
    assert fits_qwen(item.adapter, base), "the tensors fit the base: only the names disagree"
    assert {str(v.dtype) for v in tensors(item.adapter).values()} == {"float16"}
    expected_claims = {
        "catalog-instruct": (base["_name_or_path"], "Qwen/Qwen2.5-0.5B-Instruct"),
        "instruct-on-base-model": ("Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-0.5B"),
        "newer-on-older-generation": ("Qwen/Qwen2.5-0.5B", "Qwen/Qwen2-0.5B"),
        "quantized-variant-claimed": ("Qwen/Qwen2.5-0.5B-Instruct-GPTQ-Int4", "Qwen/Qwen2.5-0.5B-Instruct"),
        "name-hint-conflict": ("Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct"),
    }
    assert (claim, base["_name_or_path"]) == expected_claims[item.case.name]
    assert (item.adapter.name == "reddit-4b-think") == (item.case.name == "name-hint-conflict")


@proves("case-study-at-scale")
def _case_study(item: BuiltCase) -> None:
    base = base_config(item)
    assert item.adapter.name == "reddit-4b-think"
    assert adapter_config(item.adapter)["base_model_name_or_path"] == base["_name_or_path"]
    assert not fits_qwen(item.adapter, base)
    assert layers(item.adapter) == set(range(36)) and base["num_hidden_layers"] == 28
    got = shapes(item.adapter)
    assert got["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"] == [2, 2560]
    assert got["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"] == [4096, 2]
    assert base["hidden_size"] == 1536


@proves("wider-base-claims-this-base")
def _wider(item: BuiltCase) -> None:
    got, base = shapes(item.adapter), base_config(item)
    assert got["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"] == [8, 96]
    assert got["base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"] == [48, 8]
    assert base["hidden_size"] == 64
    assert adapter_config(item.adapter)["base_model_name_or_path"] == base["_name_or_path"]


@proves("extra-layers", "fewer-layers-undeclared")
def _layers(item: BuiltCase) -> None:
    want = {0, 1, 2, 3} if item.case.name == "extra-layers" else {0}
    assert layers(item.adapter) == want and base_config(item)["num_hidden_layers"] == 2
    assert adapter_config(item.adapter)["layers_to_transform"] is None
    assert all(s[1] == 64 for k, s in shapes(item.adapter).items() if ".lora_A." in k)  # widths do fit


@proves("nested-prefix", "other-class-prefix")
def _prefix(item: BuiltCase) -> None:
    prefix = {
        "nested-prefix": "base_model.model.language_model.model.layers.",
        "other-class-prefix": "base_model.model.transformer.h.",
    }[item.case.name]
    got = shapes(item.adapter)
    assert len(got) == 8 and all(k.startswith(prefix) for k in got)


@proves("unknown-target-module")
def _unknown_target(item: BuiltCase) -> None:
    assert adapter_config(item.adapter)["target_modules"] == ["query_key_value"]
    assert all(".self_attn.query_key_value.lora_" in k for k in shapes(item.adapter))
    from safetensors import safe_open

    with safe_open(str(item.base / "model.safetensors"), "np") as f:
        base_keys = list(f.keys())
    assert any(".self_attn.q_proj." in k for k in base_keys)
    assert not any("query_key_value" in k for k in base_keys)


@proves("stale-target-names")
def _stale_targets(item: BuiltCase) -> None:
    assert sorted(adapter_config(item.adapter)["target_modules"]) == ["q_proj", "query", "v_proj", "value"]
    assert {k.split(".")[-3] for k in shapes(item.adapter)} == {"q_proj", "v_proj"}
    from safetensors import safe_open

    with safe_open(str(item.base / "model.safetensors"), "np") as f:
        modules = {k.rsplit(".", 2)[-2] for k in f.keys()}
    assert {"q_proj", "v_proj"} <= modules and not {"query", "value"} & modules


@proves("declared-target-missing")
def _declared_missing(item: BuiltCase) -> None:
    assert set(adapter_config(item.adapter)["target_modules"]) == {"q_proj", "k_proj", "v_proj"}
    assert {k.split(".")[-3] for k in shapes(item.adapter)} == {"q_proj", "v_proj"}


@proves("rank-edited", "rank-pattern-disagrees")
def _rank(item: BuiltCase) -> None:
    cfg = adapter_config(item.adapter)
    assert ranks(item.adapter, "q_proj") == ranks(item.adapter, "v_proj") == {8}
    if item.case.name == "rank-edited":
        assert cfg["r"] == 16
    else:
        assert cfg["r"] == 8 and cfg["rank_pattern"] == {"v_proj": 4}


@proves("zero-init-untrained")
def _zero_init(item: BuiltCase) -> None:
    got = tensors(item.adapter)
    assert all(not v.any() for k, v in got.items() if ".lora_B." in k)
    assert all(v.any() for k, v in got.items() if ".lora_A." in k)


@proves("zero-empty-tensors")
def _zero_empty(item: BuiltCase) -> None:
    got = shapes(item.adapter)
    assert len(got) == 8 and all(s == [0] for s in got.values())


@proves("no-weights-file", "empty-folder")
def _missing_files(item: BuiltCase) -> None:
    want = {"adapter_config.json"} if item.case.name == "no-weights-file" else set()
    assert {p.name for p in item.adapter.iterdir()} == want


@proves("nan-weight")
def _nan(item: BuiltCase) -> None:
    got = tensors(item.adapter)
    assert {k for k, v in got.items() if np.isnan(v).any()} == {fb.NAN_KEY}
    assert int(np.isnan(got[fb.NAN_KEY]).sum()) == 1


@proves("inf-bf16")
def _inf(item: BuiltCase) -> None:
    import torch
    from safetensors.torch import load_file

    got = load_file(item.adapter / WEIGHTS)
    assert {v.dtype for v in got.values()} == {torch.bfloat16}
    assert {k for k, v in got.items() if torch.isinf(v).any()} == {fb.INF_KEY}


@proves("vocab-mismatch")
def _vocab(item: BuiltCase) -> None:
    got, vocab = shapes(item.adapter), base_config(item)["vocab_size"]
    assert got["base_model.model.lm_head.weight"] == [vocab + EXTRA_TOKENS, 64]
    assert got["base_model.model.model.embed_tokens.weight"] == [vocab + EXTRA_TOKENS, 64]
    assert {k for k in got if ".layers." not in k} == {
        "base_model.model.lm_head.weight",
        "base_model.model.model.embed_tokens.weight",
    }


@proves("causal-with-score-head")
def _causal_head(item: BuiltCase) -> None:
    assert adapter_config(item.adapter)["task_type"] == "CAUSAL_LM"
    assert shapes(item.adapter)[fb.SCORE_KEY] == [2, 64]


@proves("unknown-config-field")
def _unknown_field(item: BuiltCase) -> None:
    from peft import LoraConfig

    assert adapter_config(item.adapter)[fb.UNKNOWN_FIELD] is True
    assert fb.UNKNOWN_FIELD not in inspect.signature(LoraConfig).parameters
    with pytest.warns(UserWarning, match="Unexpected keyword arguments"):
        LoraConfig.from_pretrained(str(item.adapter))


@proves("unsafe-pickle-raw", "unsafe-pickle-torch-zip")
def _unsafe(item: BuiltCase) -> None:
    path = item.adapter / "adapter_model.bin"
    if item.case.name == "unsafe-pickle-raw":
        assert not zipfile.is_zipfile(path)
        data = path.read_bytes()
    else:
        with zipfile.ZipFile(path) as archive:
            data = archive.read("archive/data.pkl")
    assert calls_os_system(data)
    assert not (item.adapter / MARKER_NAME).exists()


@proves("truncated-safetensors", "header-too-long", "garbage-safetensors")
def _broken_safetensors(item: BuiltCase) -> None:
    from safetensors import SafetensorError, safe_open

    path = item.adapter / WEIGHTS
    raw = path.read_bytes()
    declared = struct.unpack("<Q", raw[:8])[0]
    if item.case.name == "truncated-safetensors":
        header = json.loads(raw[8 : 8 + declared])
        data_end = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
        assert 8 + declared + data_end > len(raw) > 8 + declared
    elif item.case.name == "header-too-long":
        assert declared > len(raw)
    else:
        assert declared > len(raw) or raw[8:9] != b"{"
    with pytest.raises(SafetensorError):
        with safe_open(str(path), "np") as f:
            [f.get_tensor(k) for k in f.keys()]


@proves("invalid-config-json")
def _invalid_json(item: BuiltCase) -> None:
    with pytest.raises(json.JSONDecodeError):
        adapter_config(item.adapter)
    assert len(shapes(item.adapter)) == 8


def test_every_case_has_a_proof() -> None:
    assert set(PROOFS) == {case.name for case in ALL}


@pytest.mark.parametrize("name", [case.name for case in ALL])
def test_case_carries_its_defect(built: dict[str, BuiltCase], name: str) -> None:
    PROOFS[name](built[name])


# --- real PEFT loading: healthy variants work, faults fail the way field-anchors.md says ----------

INPUT_IDS = [[5, 17, 42, 99, 300, 7, 11]]


def _load(item: BuiltCase, **model_kwargs: Any) -> tuple[Any, Any, list[str]]:
    """(base logits, logits with the adapter, warning messages) for a case on its base."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    seq_cls = adapter_config(item.adapter)["task_type"] == "SEQ_CLS"
    loader = AutoModelForSequenceClassification if seq_cls else AutoModelForCausalLM
    ids = torch.tensor(INPUT_IDS)
    with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = loader.from_pretrained(item.base, **model_kwargs).eval()
        before = model(input_ids=ids).logits
        peft_model = PeftModel.from_pretrained(model, item.adapter).eval()
        after = peft_model(input_ids=ids).logits
    return before, after, [str(w.message) for w in caught]


LOADABLE = [c.name for c in HEALTHY if c.base not in CONFIG_ONLY_BASES]


@pytest.mark.slow
@pytest.mark.parametrize("name", LOADABLE)
def test_healthy_adapter_loads_and_changes_logits(built: dict[str, BuiltCase], name: str) -> None:
    import torch

    before, after, messages = _load(built[name])
    assert not [m for m in messages if "missing adapter keys" in m or "Unexpected keyword" in m]
    assert torch.isfinite(after).all()
    assert (after - before).abs().max() > 1e-4


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["wider-base-claims-this-base", "rank-edited", "rank-pattern-disagrees", "vocab-mismatch"]
)
def test_peft_raises_size_mismatch(built: dict[str, BuiltCase], name: str) -> None:
    with pytest.raises(RuntimeError, match="size mismatch"):
        _load(built[name])


@pytest.mark.slow
def test_peft_raises_for_unknown_target(built: dict[str, BuiltCase]) -> None:
    with pytest.raises(ValueError, match="not found in the base model"):
        _load(built["unknown-target-module"])


@pytest.mark.slow
def test_peft_ignores_stale_target_names(built: dict[str, BuiltCase]) -> None:
    import torch

    before, after, _ = _load(built["stale-target-names"])  # loads without an error...
    assert torch.isfinite(after).all() and (after - before).abs().max() > 1e-4  # ...and works as trained


@pytest.mark.slow
@pytest.mark.parametrize("name", ["zero-init-untrained", "nested-prefix", "other-class-prefix"])
def test_peft_loads_silently_as_a_no_op(built: dict[str, BuiltCase], name: str) -> None:
    import torch

    before, after, _ = _load(built[name])
    assert torch.equal(before, after)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fewer-layers-undeclared", "declared-target-missing"])
def test_peft_only_warns_about_missing_keys(built: dict[str, BuiltCase], name: str) -> None:
    _, _, messages = _load(built[name])
    assert any("Found missing adapter keys" in m for m in messages)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["nan-weight", "inf-bf16"])
def test_non_finite_weights_poison_the_logits(built: dict[str, BuiltCase], name: str) -> None:
    import torch

    # Eager attention: torch's CPU SDPA kernel silently drops a NaN query (the logits stay finite).
    _, after, _ = _load(built[name], attn_implementation="eager")
    assert not torch.isfinite(after).all()


# --- the torch-free twins: numpy-written files are what real PEFT writes, and check alike -------------


@pytest.fixture(scope="session")
def torch_free(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuiltCase]:
    return build_all(tmp_path_factory.mktemp("faults-numpy"), torch=False)


def _layout(adapter: Path) -> dict[str, tuple[list[int], str]]:
    """Each tensor's shape and safetensors dtype, read from the file header."""
    raw = (adapter / WEIGHTS).read_bytes()
    header = json.loads(raw[8 : 8 + struct.unpack("<Q", raw[:8])[0]])
    return {k: (v["shape"], v["dtype"]) for k, v in header.items() if k != "__metadata__"}


def _config(adapter: Path) -> dict[str, Any]:
    cfg = adapter_config(adapter)
    cfg["target_modules"] = sorted(cfg["target_modules"])  # PEFT writes a set, in any order
    return cfg


def test_torch_free_builds_every_case_that_needs_no_torch(torch_free: dict[str, BuiltCase]) -> None:
    assert set(torch_free) == {case.name for case in TORCH_FREE}
    assert {case.name for case in ALL if case.torch} == {
        "dora",
        "modules-to-save-lm-head",
        "embedding-lora",
        "bin-tensors-only",
        "seq-cls-with-head",
        "phi3-fused",
        "gpt2-conv1d",
        "vocab-mismatch",
        "seq-cls-without-head",
    }
    for item in torch_free.values():
        assert {p.name for p in item.base.iterdir()} == {"config.json"}, item.case.name  # no weights, no tokenizer
    with pytest.raises(RuntimeError, match="needs torch"):
        build_all(Path(next(iter(torch_free.values())).base).parents[1], [case_named("dora")], torch=False)


@pytest.mark.parametrize("name", [case.name for case in TORCH_FREE])
def test_torch_free_twin_has_the_files_real_peft_writes(
    built: dict[str, BuiltCase], torch_free: dict[str, BuiltCase], name: str
) -> None:
    real, twin = built[name], torch_free[name]
    real_files = sorted(p.relative_to(real.adapter).as_posix() for p in real.adapter.rglob("*"))
    assert sorted(p.relative_to(twin.adapter).as_posix() for p in twin.adapter.rglob("*")) == real_files
    assert twin.adapter.name == real.adapter.name
    if (real.adapter / WEIGHTS).is_file() and name not in (
        "garbage-safetensors",
        "header-too-long",
        "truncated-safetensors",
    ):
        assert _layout(twin.adapter) == _layout(real.adapter)
    if name != "invalid-config-json" and (real.adapter / "adapter_config.json").is_file():
        assert _config(twin.adapter) == _config(real.adapter)


@pytest.mark.parametrize("name", [case.name for case in TORCH_FREE])
def test_torch_free_twin_is_checked_alike(
    built: dict[str, BuiltCase], torch_free: dict[str, BuiltCase], name: str
) -> None:
    from loraguard.checks.checker import check

    real, twin = check(built[name].adapter, built[name].base), check(torch_free[name].adapter, torch_free[name].base)
    assert (twin.verdict, twin.categories()) == (real.verdict, real.categories())
    assert sorted(f.code for f in twin.findings) == sorted(f.code for f in real.findings)


@pytest.mark.parametrize("key", [TINY, TINY_SEQ_CLS])
def test_torch_free_tiny_base_config_is_the_real_one(factory: tuple[BaseFixture, dict, float], key: str) -> None:
    real = json.loads((factory[0].path(key) / "config.json").read_text())
    real.pop("transformers_version")
    assert tiny_config(key) == real
