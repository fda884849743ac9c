"""Loading a base and several adapters; switching between them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loraguard.errors import AdapterNotFoundError, BaseModelResolutionError, InputError
from loraguard.scoring import score_rows
from loraguard.scoring.builtin_rows import builtin_rows
from loraguard.scoring.host import adapter_names, load_host
from loraguard.scoring.model import auto_dtype_reason, cpu_bf16_features, resolve_dtype


def test_adapter_names_are_unique_and_peft_safe() -> None:
    assert adapter_names(["/x/fold.0", "/y/fold.0", "/z/fold-1", "/w/"]) == ("fold_0", "fold_0-2", "fold-1", "w")


@pytest.mark.slow
def test_several_adapters_share_one_base(tiny_base: Path, adapters: dict[str, Path]) -> None:
    multi = load_host(tiny_base, [adapters["alpha"], adapters["beta"]])
    assert multi.adapter_names == ("alpha", "beta")
    rows = builtin_rows()
    scores = {}
    for name in (None, "alpha", "beta"):
        with multi.activate(name) as model:
            scores[name] = score_rows(model, multi.tokenizer, rows).probabilities
    bare = load_host(tiny_base)
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

    half = load_host(tiny_base, dtype="bfloat16", device="cpu")
    assert next(half.model.parameters()).dtype == torch.bfloat16 and half.dtype == "bfloat16"
    assert load_host(tiny_base).dtype == "float32"  # auto, on a CPU
    assert load_host(tiny_base, dtype="float32").dtype == "float32"
    with pytest.raises(InputError, match="dtype 'float8'"):
        load_host(tiny_base, dtype="float8")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            load_host(tiny_base, device="cuda")


def test_local_folders_only(tmp_path: Path) -> None:
    with pytest.raises(BaseModelResolutionError, match="not a local folder"):
        load_host("Qwen/Qwen2.5-1.5B-Instruct")
    with pytest.raises(BaseModelResolutionError, match=r"neither a config\.json nor a \.gguf"):
        load_host(tmp_path)


@pytest.mark.slow
def test_adapter_folder_checks(tiny_base: Path, tmp_path: Path) -> None:
    with pytest.raises(AdapterNotFoundError, match="no such folder"):
        load_host(tiny_base, [tmp_path / "missing"])
    with pytest.raises(InputError, match="a file, not a folder"):
        load_host(tiny_base, [tiny_base / "config.json"])
    with pytest.raises(AdapterNotFoundError, match=r"no adapter_config\.json"):
        load_host(tiny_base, [tmp_path])


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
    hub = load_host(tiny_base, ["some-org/alpha-lora"])
    local = load_host(tiny_base, [adapters["alpha"]])
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
        load_host(tiny_base, ["some-org/alpha-lora"])
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
        load_host(tiny_base, [other])


@pytest.mark.slow
def test_activate_with_plain_model(loaded: Any) -> None:
    with loaded.activate(None) as model:
        assert model is loaded.model


@pytest.mark.slow
def test_a_failed_attach_leaves_the_base_and_the_other_adapters_unchanged(
    tiny_base: Path, adapters: dict[str, Path], tmp_path: Path
) -> None:
    """The server's safe way for every caller: PEFT fails half-way (wrong rank for the tensors), the
    half-loaded adapter is deleted again and nothing else moves."""
    from loraguard.errors import AdapterFormatError
    from loraguard.scoring.host import SENTINEL

    rows = builtin_rows()[:8]
    host = load_host(tiny_base, [adapters["alpha"]])
    with host.activate(None) as model:
        base_before = score_rows(model, host.tokenizer, rows).probabilities
    with host.activate("alpha") as model:
        alpha_before = score_rows(model, host.tokenizer, rows).probabilities
    bad = shutil.copytree(adapters["beta"], tmp_path / "bad-rank")
    config = json.loads((bad / "adapter_config.json").read_text())
    (bad / "adapter_config.json").write_text(json.dumps({**config, "r": config["r"] * 2}))
    with pytest.raises(AdapterFormatError, match="PEFT could not load it onto the base") as info:
        host.attach("bad", bad)
    assert info.value.__cause__ is not None and str(bad.resolve()) in str(info.value)
    assert set(host.model.peft_config) == {SENTINEL, "alpha"} and host.adapter_names == ("alpha",)
    with host.activate(None) as model:
        np.testing.assert_array_equal(score_rows(model, host.tokenizer, rows).probabilities, base_before)
    with host.activate("alpha") as model:
        np.testing.assert_array_equal(score_rows(model, host.tokenizer, rows).probabilities, alpha_before)
    with pytest.raises(InputError, match="already in use"):
        host.attach("alpha", adapters["beta"])


@pytest.mark.slow
def test_attach_detach_and_the_first_adapter_is_active(tiny_base: Path, adapters: dict[str, Path]) -> None:
    """A host starts as the plain model; the first adapter attached is the active one (as after PEFT's
    `from_pretrained`), later ones wait for `activate`; `detach` unloads from the model too."""
    from loraguard.scoring.host import SENTINEL, AdapterHost
    from loraguard.scoring.model import load_base

    rows = builtin_rows()[:8]
    host = AdapterHost(load_base(tiny_base))
    plain = host.model
    assert host.adapter_names == () and not hasattr(plain, "peft_config")
    with host.activate(None) as model:
        assert model is plain
        bare = score_rows(model, host.tokenizer, rows).probabilities
    host.attach("a", adapters["alpha"])
    host.attach("b", adapters["beta"])
    assert host.adapter_names == ("a", "b") and host.adapter_paths == (
        str(adapters["alpha"].resolve()),
        str(adapters["beta"].resolve()),
    )
    first = score_rows(host.model, host.tokenizer, rows).probabilities
    with host.activate("a") as model:
        np.testing.assert_allclose(score_rows(model, host.tokenizer, rows).probabilities, first, atol=1e-6)
    assert np.abs(first - bare).max() > 0.05
    host.detach("a")
    host.detach("a")  # a no-op the second time
    assert host.adapter_names == ("b",) and set(host.model.peft_config) == {SENTINEL, "b"}
    with pytest.raises(InputError, match="not loaded"):
        with host.activate("a"):
            pass
    with host.activate(None) as model:
        np.testing.assert_allclose(score_rows(model, host.tokenizer, rows).probabilities, bare, atol=1e-6)


def test_check_adapter_reads_the_config_through_the_adapter_reader(tmp_path: Path) -> None:
    """No torch: the folder is located and its config read before any model is loaded."""
    from loraguard.errors import AdapterFormatError
    from loraguard.scoring.host import check_adapter

    (tmp_path / "adapter_config.json").write_text("{not json")
    with pytest.raises(AdapterFormatError, match=r"adapter_config\.json: invalid JSON"):
        check_adapter(tmp_path)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "task_type": "CAUSAL_LM"}))
    assert check_adapter(str(tmp_path)) == tmp_path.resolve()
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "task_type": "seq_cls"}))
    with pytest.raises(InputError, match="task_type is SEQ_CLS"):
        check_adapter(tmp_path)


def test_the_cli_dtype_choices_are_the_base_loaders() -> None:
    """`--dtype` offers exactly what `load_base` accepts (a new dtype is added in both)."""
    from loraguard.cli.options import DType
    from loraguard.scoring.model import DTYPES

    assert tuple(d.value for d in DType) == DTYPES


@pytest.mark.parametrize(
    ("flags", "features"),
    [
        ("fpu sse avx512f avx512_bf16 amx_tile", ("AVX-512 BF16",)),
        ("fpu avx512_bf16 amx_bf16 amx_tile", ("AMX-BF16", "AVX-512 BF16")),
        ("fpu sse2 avx2 avx512f", ()),
    ],
)
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path: Path, flags: str, features: tuple[str, ...]) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: {flags}\n\n")
    assert cpu_bf16_features(cpuinfo) == features


def test_auto_dtype_is_float32_on_a_cpu_and_says_why() -> None:
    """bf16 costs a trained LoRA adapter's accuracy on real weights (BENCHMARKS.md): never the CPU default,
    also where the CPU has bf16 units, which the reason names."""
    import torch

    assert resolve_dtype("auto", "cpu") is torch.float32
    assert resolve_dtype("bfloat16", "cpu") is torch.bfloat16  # opt-in
    reason = auto_dtype_reason("cpu", "float32")
    if cpu_bf16_features():
        assert reason.startswith("float32 (auto: the CPU has") and "--dtype bfloat16" in reason
    else:
        assert "no native bf16" in reason
    assert auto_dtype_reason("cuda:0", "bfloat16") == "bfloat16 (auto: CUDA)"
