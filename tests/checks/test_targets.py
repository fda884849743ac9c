"""Our re-statement of PEFT's target matching agrees with PEFT's own function."""

from __future__ import annotations

import pytest

from loraguard.adapter.config import AdapterConfig
from loraguard.checks.targets import matches_target, pattern_key

KEYS = [
    "model.layers.0.self_attn.q_proj",
    "model.layers.1.self_attn.v_proj",
    "model.layers.10.mlp.down_proj",
    "model.embed_tokens",
    "lm_head",
    "transformer.h.3.attn.c_attn",
    "transformer.h.3.mlp.c_proj",
    "model.layers.2.self_attn.o_proj",
    "score",
    "model.language_model.layers.0.self_attn.q_proj",
]
CONFIGS = [
    {"target_modules": ["q_proj", "v_proj"]},
    {"target_modules": ["attn.c_attn", "c_proj"]},
    {"target_modules": r".*\.(q_proj|down_proj)"},
    {"target_modules": ["q_proj", "v_proj"], "layers_to_transform": [1, 10]},
    {"target_modules": ["q_proj"], "layers_to_transform": 0, "layers_pattern": "layers"},
    {"target_modules": ["q_proj", "o_proj"], "exclude_modules": ["model.layers.2.self_attn.o_proj"]},
    {"target_modules": ["q_proj", "score"], "modules_to_save": ["score"]},
]


@pytest.mark.slow
@pytest.mark.parametrize("raw", CONFIGS)
def test_matches_peft(raw: dict) -> None:
    peft = pytest.importorskip("peft")
    from peft.tuners.tuners_utils import check_target_module_exists

    cfg = peft.LoraConfig(**raw)
    ours = AdapterConfig(raw=raw)
    for key in KEYS:
        theirs = check_target_module_exists(cfg, key)
        expected = bool(theirs) and type(theirs).__name__ != "_ExcludedModule"
        assert matches_target(ours, key) == expected, key


def test_pattern_key_first_match_like_peft() -> None:
    patterns = {"q_proj": 4, r"layers\.1\..*v_proj": 2}
    assert pattern_key(patterns, "model.layers.0.self_attn.q_proj") == "q_proj"
    assert pattern_key(patterns, "model.layers.1.self_attn.v_proj") == r"layers\.1\..*v_proj"
    assert pattern_key(patterns, "model.layers.0.self_attn.v_proj") is None
