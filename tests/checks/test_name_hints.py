"""Size tokens in names (LG505's evidence): ModelScope escapes undone, versions never read as sizes."""

from __future__ import annotations

import pytest

from loraguard.checks.rules.identity import size_hints


@pytest.mark.parametrize(
    ("name", "sizes"),
    [
        ("Qwen2___5-1___5B-Instruct", [1.5]),  # ModelScope's folder for Qwen/Qwen2.5-1.5B-Instruct
        ("Qwen2___5-0___5B-Instruct", [0.5]),
        ("Qwen2___5-7B-Instruct", [7.0]),
        ("Qwen/Qwen2.5-7B-Instruct", [7.0]),
        ("Qwen/Qwen2.5-1.5B-Instruct-GPTQ-Int4", [1.5]),
        ("mistralai/Mistral-7B-Instruct-v0.3", [7.0]),
        ("meta-llama/Llama-3.1-8B", [8.0]),
        ("unsloth/meta-llama-3.1-8b-bnb-4bit", [8.0]),
        ("Qwen/Qwen3-30B-A3B", [30.0]),
        ("google/gemma-3-270m-it", [0.27]),
        ("bigscience/bloom-1b1", [1.1]),
        ("bigscience/bloom-560m", [0.56]),
        ("reddit-4b-think", [4.0]),
        ("llama3_8b", [8.0]),
        ("TinyLlama-1.1B-Chat-v1.0", [1.1]),
        # versions and ambiguous underscores: no size
        ("Qwen2.5", []),
        ("Mistral-Nemo-Instruct-2407", []),
        ("Llama-3.1", []),
        ("v0.3", []),
        ("Qwen2_5-1_5B-Instruct", []),  # `_` for a dot: 1.5B or 5B? say nothing
        ("llama_3_8b", []),
    ],
)
def test_size_hints(name: str, sizes: list[float]) -> None:
    assert size_hints(name) == pytest.approx(sizes)
