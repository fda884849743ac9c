#!/usr/bin/env python
"""Build `src/loraguard/basemodel/catalog.json`: the popular open bases loraguard knows offline.

Each model's architecture keys come from, in order of preference:

1. `--from-hub` (and the network is there): its `config.json` fetched with `hf_hub_download`;
2. a real config.json under BASE_CONFIGS (default `../shared/corpus/base-configs`), in a folder
   named `<org>__<name>`;
3. the excerpt `scripts/catalog_sources/<org>__<name>.json`: the architecture keys of a real
   config.json of that model, with `_name`, `_source` (where that config.json was read: a Hub
   URL, or `github:owner/repo@commit:path`), `_family` and `_variant`.

For the families `loraguard.basemodel.families` derives (Llama, Qwen, Gemma, Phi, GPT-2...) only
their architecture keys are kept (`MINIMAL_KEYS`) and `params` is `families.param_count`. Any other
model type (BERT, T5, BART, Whisper, vision-language models...) keeps its whole config but the
keys in `SKELETON_DROP` (names, dates, generation settings): `loraguard` lists its modules from a
transformers skeleton on the meta device, which needs nothing but the config, and so does its
`params` here (this needs the `ml` extra when such an entry is built).

`scripts/catalog_aliases.json` names quantized or re-uploaded twins (`unsloth/...-bnb-4bit`,
`...-GPTQ-Int4`, `...-AWQ`) of catalog models, each with the public source that pairs it with its
original; they are written to the catalog's `aliases` list. `--check` exits 1 when the written
catalog would differ.

    python scripts/build_catalog.py [BASE_CONFIGS] [--from-hub] [--out PATH] [--check]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SOURCES = Path(__file__).resolve().parent / "catalog_sources"
ALIASES = Path(__file__).resolve().parent / "catalog_aliases.json"
DEFAULT_OUT = REPO / "src" / "loraguard" / "basemodel" / "catalog.json"
DEFAULT_BASE_CONFIGS = REPO.parent / "shared" / "corpus" / "base-configs"

MINIMAL_KEYS = (
    "model_type",
    "architectures",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "vocab_size",
    "tie_word_embeddings",
    "attention_bias",
    "mlp_bias",
    "qk_layernorm",
    "n_embd",
    "n_layer",
    "n_head",
    "n_inner",
    "n_positions",
    "n_ctx",
)


SKELETON_DROP = frozenset(
    {
        "transformers_version",
        "torch_dtype",
        "dtype",
        "task_specific_params",
        "auto_map",
        "quantization_config",
        "use_cache",
        "bos_token_id",
        "eos_token_id",
        "pad_token_id",
        "decoder_start_token_id",
        "forced_bos_token_id",
        "forced_eos_token_id",
        "suppress_tokens",
        "forced_decoder_ids",
        "begin_suppress_tokens",
        "max_length",
        "num_beams",
        "early_stopping",
        "no_repeat_ngram_size",
        "length_penalty",
        "min_length",
        "output_past",
        "gradient_checkpointing",
        "id2label",
        "label2id",
        "num_labels",
        "finetuning_task",
        "problem_type",
    }
)
"""Keys of a config that never change its modules: left out of skeleton-built catalog entries
(with every key starting with `_`, such as `_name_or_path`)."""


def derivable(config: Mapping[str, Any]) -> bool:
    """Whether `loraguard.basemodel.families` derives this model type from config.json alone."""
    from loraguard.basemodel.families import SUPPORTED_MODEL_TYPES

    return config.get("model_type") in SUPPORTED_MODEL_TYPES


def minimal_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The architecture keys of `config`: `MINIMAL_KEYS` (in that order) for a derivable family,
    else every key but `SKELETON_DROP` and `_`-prefixed ones (sorted)."""
    if derivable(config):
        return {key: config[key] for key in MINIMAL_KEYS if key in config}
    return {key: config[key] for key in sorted(config) if not key.startswith("_") and key not in SKELETON_DROP}


def _params(name: str, minimal: Mapping[str, Any]) -> int | None:
    from loraguard.basemodel.families import param_count

    if derivable(minimal):
        return param_count(minimal)
    from loraguard.basemodel.skeleton import spec_from_skeleton

    # A copy: transformers' config classes may rewrite nested dicts they are given (Gemma 4's vision
    # rope_parameters), and the catalog must keep the source's values whether or not the skeleton is cached.
    return spec_from_skeleton(copy.deepcopy(dict(minimal)), name=name, task=None).param_count


_HUB_REACHABLE = [True]


def _fetch_from_hub(name: str) -> dict[str, Any] | None:
    """The model's config.json from the Hub; None (and no further tries) when the Hub is unreachable."""
    if not _HUB_REACHABLE[0]:
        return None
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

        path = hf_hub_download(name, "config.json")
        loaded = json.loads(Path(path).read_text(encoding="utf-8"))
    except (RepositoryNotFoundError, EntryNotFoundError) as exc:  # gated or gone: this model only
        if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
            print(f"  {name}: not on the Hub ({type(exc).__name__}); using local sources", file=sys.stderr)
            return None
        _HUB_REACHABLE[0] = False
        print(f"  Hub unreachable ({type(exc).__name__}); using local sources", file=sys.stderr)
        return None
    except Exception as exc:  # offline, proxy, DNS...: stop asking
        _HUB_REACHABLE[0] = False
        print(f"  Hub unreachable ({type(exc).__name__}); using local sources", file=sys.stderr)
        return None
    return loaded if isinstance(loaded, dict) else None


def _entry(excerpt_path: Path, base_configs: Path | None, from_hub: bool) -> dict[str, Any]:
    excerpt = json.loads(excerpt_path.read_text(encoding="utf-8"))
    name = excerpt["_name"]
    config: Mapping[str, Any] = excerpt
    source = excerpt["_source"]
    real = base_configs / name.replace("/", "__") / "config.json" if base_configs else None
    fetched = _fetch_from_hub(name) if from_hub else None
    if fetched is not None:
        config = fetched
        source = f"https://huggingface.co/{name}/blob/main/config.json (fetched)"
    elif real is not None and real.is_file():
        config = json.loads(real.read_text(encoding="utf-8"))
        source = f"shared corpus: base-configs/{real.parent.name}/config.json ({excerpt['_source']})"
    minimal = minimal_config(config)
    if not isinstance(minimal.get("model_type"), str):
        raise SystemExit(f"{excerpt_path.name}: no model_type")
    params = _params(name, minimal)
    if not params:
        raise SystemExit(f"{excerpt_path.name}: no parameter count for model_type {minimal['model_type']!r}")
    return {
        "name": name,
        "config": minimal,
        "family": excerpt["_family"],
        "variant": excerpt["_variant"],
        "params": params,
        "source": source,
    }


def build(base_configs: Path | None, *, from_hub: bool = False) -> list[dict[str, Any]]:
    """Every catalog entry, sorted by name (case-insensitive)."""
    entries = [_entry(path, base_configs, from_hub) for path in sorted(SOURCES.glob("*.json"))]
    names = [entry["name"].lower() for entry in entries]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise SystemExit(f"duplicate catalog names: {sorted(duplicates)}")
    return sorted(entries, key=lambda entry: entry["name"].lower())


def aliases(entries: list[dict[str, Any]], path: Path = ALIASES) -> list[dict[str, str]]:
    """The twins of `path` (`{"aliases": [{"name", "target", "source"}...]}`), sorted by name.

    Every target must be a catalog entry and no alias may be a catalog name or repeat.
    """
    if not path.is_file():
        return []
    document = json.loads(path.read_text(encoding="utf-8"))
    names = {entry["name"].lower(): entry["name"] for entry in entries}
    out: dict[str, dict[str, str]] = {}
    for item in document["aliases"]:
        alias, target, source = item["name"], item["target"], item["source"]
        if target.lower() not in names:
            raise SystemExit(f"{path.name}: alias {alias} points to {target}, which is not in the catalog")
        if alias.lower() in names or alias.lower() in out:
            raise SystemExit(f"{path.name}: alias {alias} is a catalog name or appears twice")
        if not source:
            raise SystemExit(f"{path.name}: alias {alias} has no source")
        out[alias.lower()] = {"name": alias, "target": names[target.lower()], "source": source}
    return sorted(out.values(), key=lambda item: item["name"].lower())


def render(entries: list[dict[str, Any]], twins: list[dict[str, str]] | None = None) -> str:
    """The catalog file's text: one model (then one alias) per line inside a JSON document."""
    lines = [json.dumps(entry, separators=(", ", ": ")) for entry in entries]
    alias_lines = [json.dumps(twin, separators=(", ", ": ")) for twin in twins or []]
    return (
        '{"format": 1, "models": [\n' + ",\n".join(lines) + '\n], "aliases": [\n' + ",\n".join(alias_lines) + "\n]}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "base_configs",
        nargs="?",
        type=Path,
        default=None,
        help="folder of <org>__<name>/config.json (default: ../shared/corpus/base-configs)",
    )
    parser.add_argument("--from-hub", action="store_true", help="fetch each config.json from the Hub first")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write catalog.json")
    parser.add_argument("--check", action="store_true", help="exit 1 if --out is stale; write nothing")
    args = parser.parse_args(argv)
    base_configs = args.base_configs
    if base_configs is None and DEFAULT_BASE_CONFIGS.is_dir():
        base_configs = DEFAULT_BASE_CONFIGS
    if base_configs is not None and not base_configs.is_dir():
        parser.error(f"{base_configs} is not a folder")
    entries = build(base_configs, from_hub=args.from_hub)
    text = render(entries, aliases(entries))
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
        if current != text:
            print(f"{args.out} is out of date: run scripts/build_catalog.py", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {len(entries)} models to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
