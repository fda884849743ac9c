"""Loading a base and several adapters; switching between them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loraguard.errors import AdapterNotFoundError, BaseModelResolutionError, InputError
from loraguard.modelload import adapter_names, load_model
from loraguard.scoring import score_rows
from loraguard.scoring.builtin_rows import builtin_rows


def test_adapter_names_are_unique_and_peft_safe() -> None:
    assert adapter_names(["/x/fold.0", "/y/fold.0", "/z/fold-1", "/w/"]) == ("fold_0", "fold_0-2", "fold-1", "w")


@pytest.mark.slow
def test_several_adapters_share_one_base(tiny_base: Path, adapters: dict[str, Path]) -> None:
    multi = load_model(tiny_base, [adapters["alpha"], adapters["beta"]])
    assert multi.adapter_names == ("alpha", "beta")
    rows = builtin_rows()
    scores = {}
    for name in (None, "alpha", "beta"):
        with multi.activate(name) as model:
            scores[name] = score_rows(model, multi.tokenizer, rows).probabilities
    bare = load_model(tiny_base)
    plain = score_rows(bare.model, bare.tokenizer, rows).probabilities
    np.testing.assert_allclose(scores[None], plain, atol=1e-5)  # no adapter = the bare base
    assert np.abs(scores["alpha"] - scores["beta"]).max() > 0.05
    assert np.abs(scores["alpha"] - plain).max() > 0.05
    # switching back and forth is stable
    with multi.activate("alpha") as model:
        again = score_rows(model, multi.tokenizer, rows).probabilities
    np.testing.assert_allclose(again, scores["alpha"], atol=1e-6)
    with pytest.raises(InputError, match="not loaded"):
        with multi.activate("gamma"):
            pass


@pytest.mark.slow
def test_dtype_and_device_options(tiny_base: Path) -> None:
    import torch

    half = load_model(tiny_base, dtype="bfloat16", device="cpu")
    assert next(half.model.parameters()).dtype == torch.bfloat16 and half.dtype == "bfloat16"
    assert load_model(tiny_base).dtype == "float32"
    with pytest.raises(InputError, match="dtype 'float8'"):
        load_model(tiny_base, dtype="float8")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            load_model(tiny_base, device="cuda")


def test_local_folders_only(tmp_path: Path) -> None:
    with pytest.raises(BaseModelResolutionError, match="not a local folder"):
        load_model("Qwen/Qwen2.5-1.5B-Instruct")
    with pytest.raises(BaseModelResolutionError, match=r"no config\.json"):
        load_model(tmp_path)


@pytest.mark.slow
def test_adapter_folder_checks(tiny_base: Path, tmp_path: Path) -> None:
    with pytest.raises(AdapterNotFoundError, match="no such folder"):
        load_model(tiny_base, [tmp_path / "missing"])
    with pytest.raises(InputError, match="a file, not a folder"):
        load_model(tiny_base, [tiny_base / "config.json"])
    with pytest.raises(AdapterNotFoundError, match=r"no adapter_config\.json"):
        load_model(tiny_base, [tmp_path])


@pytest.mark.slow
def test_an_adapter_hub_id_is_loaded_from_its_snapshot_and_offline_is_a_clean_error(
    tiny_base: Path, adapters: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Any
) -> None:
    """`--adapter org/name` (the case study's download) scores exactly like the local folder; without a
    network or cache it is one `Error:` line, not a traceback."""
    import huggingface_hub

    from loraguard.errors import HubUnavailableError

    snapshot = shutil.copytree(adapters["alpha"], tmp_path / "hub" / "snapshots" / "abc123")
    asked: list[tuple[str, Any]] = []

    def fake_download(repo_id: str, **kwargs: Any) -> str:
        asked.append((repo_id, kwargs.get("allow_patterns")))
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    rows = builtin_rows()[:8]
    hub = load_model(tiny_base, ["some-org/alpha-lora"])
    local = load_model(tiny_base, [adapters["alpha"]])
    assert [r for r, _ in asked] == ["some-org/alpha-lora"] and asked[0][1]  # small files only
    assert hub.adapter_names == ("alpha-lora",) and hub.adapter_paths == (str(snapshot.resolve()),)
    with hub.activate("alpha-lora"), local.activate(local.adapter_names[0]):
        got = score_rows(hub.model, hub.tokenizer, rows).probabilities
        want = score_rows(local.model, local.tokenizer, rows).probabilities
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    from loraguard.demo.pipeline import write_rows_csv

    data = write_rows_csv(tmp_path / "rows.csv")
    code, _out, err = run_cli(
        [
            "score",
            str(data),
            "--base",
            str(tiny_base),
            "--adapter",
            "some-org/alpha-lora",
            "--out",
            str(tmp_path / "hub.csv"),
            "--quiet",
        ]
    )
    assert code == 0, err
    assert (tmp_path / "hub.csv").read_text().count("\n") == len(builtin_rows()) + 1

    def offline(repo_id: str, **kwargs: Any) -> str:
        raise OSError("offline and not in the cache")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(HubUnavailableError, match=r"some-org/alpha-lora.*Hugging Face Hub"):
        load_model(tiny_base, ["some-org/alpha-lora"])
    code, _out, err = run_cli(
        [
            "score",
            str(data),
            "--base",
            str(tiny_base),
            "--adapter",
            "some-org/alpha-lora",
            "--out",
            str(tmp_path / "p.csv"),
            "--quiet",
        ]
    )
    assert code == 2 and err.startswith("Error: ") and "Traceback" not in err and "some-org/alpha-lora" in err
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.slow
def test_seq_cls_adapter_refused(tiny_base: Path, adapters: dict[str, Path], tmp_path: Path) -> None:
    other = shutil.copytree(adapters["alpha"], tmp_path / "cls")
    config = json.loads((other / "adapter_config.json").read_text())
    config["task_type"] = "SEQ_CLS"
    (other / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match="task_type is SEQ_CLS"):
        load_model(tiny_base, [other])


@pytest.mark.slow
def test_activate_with_plain_model(loaded: Any) -> None:
    with loaded.activate(None) as model:
        assert model is loaded.model
