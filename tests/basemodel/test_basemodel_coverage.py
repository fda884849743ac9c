"""How many of the bases real adapters claim resolve offline (issue 13 sets the goal at 90%).

Two populations: the PEFT adapter configs of `../shared` (corpus and case-study seeds), and
`data/claimed_bases.tsv`, the `base_model_name_or_path` of real adapter configs on GitHub read through
the search tool (repository, commit and path on every row). A claim resolves when
`resolve_claimed_base` finds its base without network and without the local Hugging Face cache.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import loraguard.basemodel.resolve as resolve_module
from loraguard.basemodel.resolve import resolve_claimed_base

DATA = Path(__file__).resolve().parent / "data" / "claimed_bases.tsv"
TARGET = 0.90
SAMPLE_FLOOR = 0.76
"""What the catalog reaches today on the GitHub sample: a regression floor (see the xfail below)."""
SHARED_FLOOR = 0.84
_LOCAL_DIRS = {"models", "model", "base_model", "output", "outputs", "checkpoints"}


def _rows() -> list[list[str]]:
    lines = DATA.read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines if line and not line.startswith("#")]


def _is_local(claim: str) -> bool:
    first = claim.split("/", 1)[0].lower()
    return claim.startswith(("/", ".", "~")) or "\\" in claim or first in _LOCAL_DIRS


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Resolution only: no spec is built (skeletons would need torch) and the local Hub cache is ignored."""
    monkeypatch.setattr(resolve_module, "catalog_spec", lambda entry, task=None: entry)
    monkeypatch.setattr(resolve_module, "_cached_config", lambda repo_id: None)
    yield


def _share(claims: list[str]) -> tuple[float, list[str]]:
    missed = [claim for claim in claims if resolve_claimed_base(claim) is None]
    return 1 - len(missed) / len(claims), missed


def _sample_hub_ids() -> list[str]:
    return [claim for *_, claim in _rows() if claim != "null" and not _is_local(claim)]


def _shared_claims(shared_dir: Path) -> list[str]:
    configs = sorted((shared_dir / "corpus" / "adapters").glob("*/adapter_config.json"))
    configs += sorted((shared_dir / "data" / "seed-adapter-configs").glob("*/adapter_config.json"))
    claims = [json.loads(path.read_text()).get("base_model_name_or_path") for path in configs]
    return [claim for claim in claims if claim]


def test_claimed_bases_sample_is_sourced() -> None:
    rows = _rows()
    assert len(rows) >= 150
    seen = set()
    for repo, commit, path, claim in rows:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", repo) and re.fullmatch(r"[0-9a-f]{40}", commit), repo
        assert path.endswith("adapter_config.json") and claim, (repo, path)
        assert (repo, path) not in seen
        seen.add((repo, path))
    assert len(_sample_hub_ids()) >= 100


def test_sample_hub_ids_resolve_offline(offline: None) -> None:
    share, missed = _share(_sample_hub_ids())
    assert share >= SAMPLE_FLOOR, f"{share:.1%} of the sample's Hub ids resolve; missed: {sorted(set(missed))}"


def test_sample_local_paths_resolve_when_they_name_a_catalog_model(offline: None) -> None:
    local = {claim for *_, claim in _rows() if claim != "null" and _is_local(claim)}
    resolved = {claim for claim in local if resolve_claimed_base(claim) is not None}
    assert {
        "/kaggle/input/qwen25-15b-weights/qwen_files/Qwen/Qwen2___5-1___5B-Instruct",
        "/content/llama3_model/models--meta-llama--Meta-Llama-3-8B/snapshots/8cde5ca8380496c9a6cc7ef3a8b46a0372a1d920",
        "models/gemma-3-270m",
        "./gemma3-270m",
        "./model/Qwen2-7B-Instruct",
    } <= resolved
    assert "/root/autodl-tmp/models/qwythos-9b" not in resolved  # named after no catalog model


@pytest.mark.xfail(
    strict=True,
    reason="issue 13's 90% is not reached on the GitHub sample: 108 of its 141 Hub ids resolve (76.6%; 74% before "
    "CodeGen-350M/2B-multi, PaliGemma-3b-pt-224 and Gemma-4-E4B-it, 65% before the aliases and new families; "
    "18 of its 26 held-out rows, 69%). Of the 33 misses, 9 are community fine-tunes (fdtn-ai/Foundation-Sec-8B, "
    "Vikhrmodels/QVikhr-3-1.7B-..., "
    "stanford-oval/churro-3B...) and 3 official remote-code models (THUDM/chatglm-6b, THUDM/glm-4-9b-chat, "
    "microsoft/llava-med-v1.5-mistral-7b) that no offline catalog can know; 7 are re-uploads or unsloth twins with "
    "no source pairing them to a catalog model and no config.json of theirs found (daryl149/llama-2-7b-chat-hf, "
    "decapoda-research/llama-7b-hf, unsloth/tinyllama-bnb-4bit, unsloth/phi-3-mini-4k-instruct-bnb-4bit...); 14 are "
    "official bases whose real config.json was not found (Qwen2.5-Coder-1.5B-Instruct, Qwen2.5-Math-1.5B, "
    "Qwen1.5-7B, SmolVLM-256M/500M, pythia-70m, falcon-7b, Llama-3.2-11B-Vision, gemma-4-12B, medgemma-1.5-4b-it, "
    "seamless-m4t-v2-large, Cosmos-Reason2-2B, HY-MT1.5-1.8B, Intern-Decision-2B). 90% needs 127: 19 of those 21. "
    "Remove this mark once it passes.",
)
def test_sample_hub_ids_reach_the_goal(offline: None) -> None:
    share, _ = _share(_sample_hub_ids())
    assert share >= TARGET


@pytest.mark.shared
def test_shared_corpus_claims_resolve_offline(shared_dir: Path, offline: None) -> None:
    claims = _shared_claims(shared_dir)
    assert len(claims) >= 20
    share, missed = _share(claims)
    assert share >= SHARED_FLOOR, f"{share:.1%} of ../shared's claims resolve; missed: {sorted(set(missed))}"
    assert "NovaSearch/stella_en_400M_v5" in missed  # remote code: loraguard never builds it
