"""Issue 13: false alarms `check` no longer raises, and findings it no longer leaves out.

Built torch-free in PEFT's on-disk format (`fault_cases.peft_files`), shaped like the real adapters of
`../shared/corpus` (test_corpus.py runs the same rules on those files).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fault_cases import build_base
from fault_cases.bases import TINY, TINY_SEQ_CLS, BaseFixture
from fault_cases.peft_files import (
    CONFIG_FILE,
    Geometry,
    read_tensors,
    rename_keys,
    stamp_json,
    write_lora,
    write_tensors,
)
from loraguard.basemodel.catalog import find_entry
from loraguard.checks.checker import check
from loraguard.checks.report import CheckReport
from loraguard.findings import Finding, Severity


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> BaseFixture:
    """The tiny Qwen2 bases as config-only folders; adapters written with numpy."""
    return build_base(tmp_path_factory.mktemp("precision"), torch=False)


def lora(fx: BaseFixture, d: Path, **kwargs: object) -> Path:
    return fx.lora(d, TINY, **kwargs)  # type: ignore[arg-type]


def codes(report: CheckReport) -> dict[str, Severity]:
    return {f.code: f.severity for f in report.findings if f.code != "LG506"}


def one(report: CheckReport, code: str) -> Finding:
    found = [f for f in report.findings if f.code == code]
    assert len(found) == 1, report.to_json()
    return found[0]


def edit_tensors(d: Path, change: dict[str, np.ndarray]) -> None:
    write_tensors(d, {**read_tensors(d), **change})


def lora_b_keys(d: Path) -> list[str]:
    return [k for k in read_tensors(d) if k.endswith("lora_B.weight")]


# --- stale target names -------------------------------------------------------------------------------


def test_a_stale_target_name_is_a_warning_not_an_error(fx: BaseFixture, tmp_path: Path) -> None:
    adapter = lora(fx, tmp_path / "a", target_modules=["q_proj", "v_proj", "query", "value"])
    report = check(adapter, fx.tiny)
    assert codes(report) == {"LG204": Severity.WARNING} and report.verdict.value == "warn"
    finding = one(report, "LG204")
    assert finding.evidence["targets"] == ["query", "value"] and finding.evidence["matched"] == ["q_proj", "v_proj"]
    assert "stale" in finding.message and "PEFT ignored them when training" in finding.message


def test_a_target_name_with_tensors_the_base_lacks_stays_an_error(fx: BaseFixture, tmp_path: Path) -> None:
    adapter = lora(fx, tmp_path / "a")
    rename_keys(adapter, ".v_proj.", ".query_key_value.")
    stamp_json(adapter / CONFIG_FILE, {"target_modules": ["q_proj", "query_key_value"]})
    report = check(adapter, fx.tiny)
    finding = one(report, "LG204")
    assert finding.severity is Severity.ERROR and finding.evidence["tensors"] == 2
    assert "the file holds tensors for it" in finding.message and report.verdict.value == "fail"


def test_no_target_matching_at_all_stays_an_error(fx: BaseFixture, tmp_path: Path) -> None:
    adapter = lora(fx, tmp_path / "a")
    stamp_json(adapter / CONFIG_FILE, {"target_modules": ["query", "value"]})  # PEFT raises: nothing matches
    found = [f for f in check(adapter, fx.tiny).findings if f.code == "LG204"]
    assert [f.severity for f in found] == [Severity.ERROR, Severity.ERROR]
    assert all("PEFT raises" in f.message for f in found)


# --- classification heads named in modules_to_save ------------------------------------------------------


def _with_head(fx: BaseFixture, d: Path, heads: dict[str, tuple[int, int]], **config: object) -> Path:
    adapter = lora(fx, d)
    rng = np.random.default_rng(0)
    edit_tensors(
        adapter, {f"base_model.model.{k}.weight": rng.normal(size=s).astype("float32") for k, s in heads.items()}
    )
    stamp_json(adapter / CONFIG_FILE, config)
    return adapter


def test_a_segmentation_head_in_modules_to_save_is_expected_without_task_type(fx: BaseFixture, tmp_path: Path) -> None:
    heads = {"decode_head.classifier": (150, 64), "decode_head.linear_fuse": (64, 256)}
    adapter = _with_head(fx, tmp_path / "seg", heads, task_type=None, modules_to_save=["decode_head"])
    assert "task-head" not in check(adapter).categories()
    unnamed = _with_head(fx, tmp_path / "unnamed", heads, task_type=None, modules_to_save=None)
    assert one(check(unnamed), "LG306").evidence["heads"] == ["decode_head.classifier", "decode_head.linear_fuse"]


def test_without_task_type_the_base_class_is_the_one_its_config_names(fx: BaseFixture, tmp_path: Path) -> None:
    # PEFT with no task_type wraps the model the user loaded: on a SEQ_CLS base its `score` is a module.
    claim = fx.name(TINY_SEQ_CLS)
    adapter = _with_head(
        fx, tmp_path / "a", {"score": (2, 64)}, task_type=None, modules_to_save=["score"], base_model_name_or_path=claim
    )
    report = check(adapter, fx.path(TINY_SEQ_CLS))
    assert report.base is not None and report.base["architecture"] == "Qwen2ForSequenceClassification"
    assert codes(report) == {} and report.verdict.value == "pass", report.to_json()


def test_modules_to_save_match_by_suffix_as_peft_does(fx: BaseFixture, tmp_path: Path) -> None:
    # DistilBERT: "classifier" also wraps "pre_classifier" (PEFT matches a plain string suffix).
    heads = {"pre_classifier": (64, 64), "classifier": (6, 64)}
    named = _with_head(fx, tmp_path / "a", heads, task_type=None, modules_to_save=["classifier", "score"])
    assert "task-head" not in check(named).categories()
    causal = _with_head(fx, tmp_path / "b", heads, task_type="CAUSAL_LM", modules_to_save=["score"])
    assert one(check(causal), "LG306").evidence["heads"] == ["classifier", "pre_classifier"]


# --- zero LoRA matrices that are not a no-op ---------------------------------------------------------------


def _zero_b(fx: BaseFixture, d: Path, **kwargs: object) -> Path:
    adapter = lora(fx, d, init_lora_weights=True, **kwargs)  # every lora_B zero: PEFT's untrained state
    assert all(not read_tensors(adapter)[k].any() for k in lora_b_keys(adapter))
    return adapter


def test_zero_lora_b_with_a_trained_lora_bias_is_not_a_no_op(fx: BaseFixture, tmp_path: Path) -> None:
    adapter = _zero_b(fx, tmp_path / "a")
    rng = np.random.default_rng(1)
    edit_tensors(
        adapter,
        {
            k.replace(".weight", ".bias"): rng.normal(size=read_tensors(adapter)[k].shape[0]).astype("float32")
            for k in lora_b_keys(adapter)
        },
    )
    stamp_json(adapter / CONFIG_FILE, {"lora_bias": True})
    report = check(adapter, fx.tiny)
    assert codes(report) == {"LG403": Severity.WARNING} and report.verdict.value == "warn"
    finding = one(report, "LG403")
    assert "every lora_B weight (4) is exactly zero" in finding.message
    assert "4 non-zero lora_B.bias tensor(s)" in finding.message
    assert finding.evidence["nonzero_bias"] == 4 and finding.evidence["saved_modules"] == []


def test_zero_lora_b_with_a_saved_head_is_not_a_no_op(fx: BaseFixture, tmp_path: Path) -> None:
    adapter = _zero_b(fx, tmp_path / "a")
    edit_tensors(adapter, {"base_model.model.score.weight": np.ones((2, 64), dtype="float32")})
    stamp_json(adapter / CONFIG_FILE, {"modules_to_save": ["score"], "task_type": None})
    finding = one(check(adapter), "LG403")
    assert finding.severity is Severity.WARNING and finding.evidence["saved_modules"] == ["score"]
    assert "the saved modules_to_save weights of score" in finding.message


def test_zero_lora_b_is_still_a_no_op_error_when_nothing_else_is_non_zero(fx: BaseFixture, tmp_path: Path) -> None:
    adapter = _zero_b(fx, tmp_path / "a")
    edit_tensors(
        adapter,
        {
            **{
                k.replace(".weight", ".bias"): np.zeros(read_tensors(adapter)[k].shape[0], "float32")
                for k in lora_b_keys(adapter)
            },
            # PEFT saves a copy of the base's own embedding beside embedding LoRA: it changes nothing.
            "base_model.model.model.embed_tokens.base_layer.weight": np.ones((941, 64), dtype="float32"),
        },
    )
    report = check(adapter, fx.tiny)
    assert codes(report) == {"LG401": Severity.ERROR}, report.to_json()
    assert "nothing else in the file changes the output" in one(report, "LG401").message


# --- no base to check against; a base named by a local path --------------------------------------------------


@pytest.mark.parametrize(
    ("claim", "why", "local"),
    [
        ("/kaggle/input/qwen2.5/transformers/1.5b-instruct/1", "is a local path that holds no model here", True),
        ("./out", "is a local path that holds no model here", True),
        ("acme/moderation-base-7b", "is not in the catalog or the local Hugging Face cache", False),
        (None, "the config names no base (base_model_name_or_path is null)", False),
    ],
)
def test_an_unresolved_claimed_base_is_said(
    fx: BaseFixture, tmp_path: Path, claim: str | None, why: str, local: bool
) -> None:
    adapter = lora(fx, tmp_path / "a")
    stamp_json(adapter / CONFIG_FILE, {"base_model_name_or_path": claim})
    report = check(adapter)
    finding = one(report, "LG507")
    assert finding.severity is Severity.WARNING and finding.category == "base-unchecked"
    assert why in finding.message and "Tensor shapes, layer counts, key prefixes" in finding.message
    assert "--base" in finding.fix and report.verdict.value == "warn"
    assert ("LG508" in codes(report)) is local
    if local:
        assert "not portable" in one(report, "LG508").message
    assert "LG507" not in codes(check(adapter, fx.tiny))  # with --base everything is checked


def test_an_unreadable_given_base_is_an_error_not_a_missing_base(fx: BaseFixture, tmp_path: Path) -> None:
    adapter = lora(fx, tmp_path / "a")
    report = check(adapter, tmp_path / "nowhere")
    assert "LG101" in codes(report) and "LG507" not in codes(report)


# --- weak identity evidence --------------------------------------------------------------------------------------

SMOLLM2_135M = Geometry(hidden=576, q_out=576, kv_out=192, layers=30)  # 9 heads × 64, 3 kv heads


def _smollm2_folder(root: Path, name_or_path: str | None) -> Path:
    """SmolLM2-135M-Instruct's config.json in a folder called `smollm2-135m`; `_name_or_path` as given."""
    config = dict(find_entry("HuggingFaceTB/SmolLM2-135M-Instruct").config)  # type: ignore[union-attr]
    config.pop("_name_or_path", None)
    if name_or_path is not None:
        config["_name_or_path"] = name_or_path
    folder = root / "smollm2-135m"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_a_folder_name_is_not_stated_as_other_weights(tmp_path: Path) -> None:
    adapter = write_lora(tmp_path / "a", SMOLLM2_135M, claim="HuggingFaceTB/SmolLM2-135M-Instruct")
    report = check(adapter, _smollm2_folder(tmp_path / "weak", None))
    finding = one(report, "LG503")
    assert finding.severity is Severity.INFO and report.verdict.value == "pass", report.to_json()
    assert "different weights" not in finding.message and "a folder or file name" in finding.message
    assert "cannot be told from its name" in finding.message
    assert finding.evidence["compared"] == "shapes and names" and finding.evidence["evidence_strength"] == "weak"
    # When the base's config says which model it is, the same comparison is a warning, as before.
    strong = check(adapter, _smollm2_folder(tmp_path / "strong", "HuggingFaceTB/SmolLM2-135M"))
    finding = one(strong, "LG503")
    assert finding.severity is Severity.WARNING and "same shapes, different weights" in finding.message


def test_a_local_path_claim_falls_back_to_the_model_cards_base(tmp_path: Path) -> None:
    from fault_cases.scaled import QWEN25_05B_GEOMETRY, write_qv_adapter

    adapter = write_qv_adapter(tmp_path / "a", QWEN25_05B_GEOMETRY, claim="/kaggle/input/qwen2.5/transformers/0.5b")
    (adapter / "README.md").write_text("---\nbase_model: Qwen/Qwen2.5-0.5B-Instruct\nlibrary_name: peft\n---\n")
    report = check(adapter)
    assert report.base is not None and report.base["name"] == "Qwen/Qwen2.5-0.5B-Instruct"
    assert "LG507" not in codes(report)  # checked against the card's base
    assert "its model card names Qwen/Qwen2.5-0.5B-Instruct" in one(report, "LG508").message
