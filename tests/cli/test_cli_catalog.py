"""`loraguard catalog [QUERY]`: list and search the offline catalog; the errors that point to it."""

from __future__ import annotations

import json

import pytest

from loraguard.basemodel.catalog import load_catalog
from loraguard.basemodel.resolve import resolve_base
from loraguard.cli.app import main
from loraguard.errors import BaseModelResolutionError


def test_catalog_lists_every_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog"]) == 0
    out = capsys.readouterr().out
    assert f"{len(load_catalog())} of {len(load_catalog())} models" in out
    assert "openai/whisper-small" in out and "Qwen/Qwen2.5-1.5B-Instruct" in out
    assert "whisper*" in out  # built from a skeleton


def test_catalog_search_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "QWEN2.5-1.5B-instruct", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == "loraguard.catalog/1" and data["query"] == "QWEN2.5-1.5B-instruct"
    assert data["total"] == len(load_catalog()) and data["count"] == len(data["models"])
    model = next(m for m in data["models"] if m["name"] == "Qwen/Qwen2.5-1.5B-Instruct")
    assert model | {"aliases": None} == {
        "name": "Qwen/Qwen2.5-1.5B-Instruct",
        "family": "qwen2.5",
        "variant": "instruct",
        "params": model["params"],
        "model_type": "qwen2",
        "modules_from": "config",
        "source": model["source"],
        "aliases": None,
    }
    twins = {alias["name"]: alias["source"] for alias in model["aliases"]}
    assert "Qwen/Qwen2.5-1.5B-Instruct-GPTQ-Int4" in twins and "unsloth/Qwen2.5-1.5B-Instruct-bnb-4bit" in twins
    assert all(source.startswith("https://github.com/") for source in twins.values())


def test_catalog_finds_a_model_by_its_twin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "unsloth/llama-3-8b-bnb-4bit", "-f", "json"]) == 0
    names = [m["name"] for m in json.loads(capsys.readouterr().out)["models"]]
    assert names == ["meta-llama/Meta-Llama-3-8B"]
    assert main(["catalog", "whisper"]) == 0
    out = capsys.readouterr().out
    assert "openai/whisper-large-v3-turbo" in out and "Qwen/" not in out


def test_catalog_without_a_match_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "no-such-model-anywhere"]) == 1
    assert "no catalog model matches 'no-such-model-anywhere'" in capsys.readouterr().out
    assert main(["catalog", "no-such-model-anywhere", "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["count"] == 0


def test_resolution_errors_point_to_the_catalog_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(BaseModelResolutionError) as raised:
        resolve_base("qwen2.5-1.5b-instrct ?")
    message = str(raised.value)
    assert "`loraguard catalog`" in message and "Qwen/Qwen2.5-1.5B-Instruct" in message
    assert main(["catalog", "--help"]) == 0  # the command the message names exists
    assert "QUERY" in capsys.readouterr().out
