#!/usr/bin/env python
"""Build `src/loraguard/basemodel/catalog.json`: the popular open bases loraguard knows offline.

Each model's architecture keys come from, in order of preference:

1. `--from-hub` (and the network is there): its `config.json` fetched with `hf_hub_download`;
2. a real config.json under BASE_CONFIGS (default `../shared/corpus/base-configs`), in a folder
   named `<org>__<name>`;
3. the excerpt `scripts/catalog_sources/<org>__<name>.json`: the architecture keys of the
   published config.json, with `_name`, `_source`, `_family` and `_variant`.

Only architecture keys are kept (`MINIMAL_KEYS`); `params` is computed by
`loraguard.basemodel.families.param_count`. `--check` exits 1 when the written catalog would differ.

    python scripts/build_catalog.py [BASE_CONFIGS] [--from-hub] [--out PATH] [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SOURCES = Path(__file__).resolve().parent / "catalog_sources"
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


def minimal_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The architecture keys of `config`, in `MINIMAL_KEYS` order."""
    return {key: config[key] for key in MINIMAL_KEYS if key in config}


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
    from loraguard.basemodel.families import param_count

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
    params = param_count(minimal)
    if params is None:
        model_type = minimal.get("model_type")
        raise SystemExit(f"{excerpt_path.name}: model_type {model_type!r} is not config-derivable")
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


def render(entries: list[dict[str, Any]]) -> str:
    """The catalog file's text: one model per line inside a JSON document."""
    lines = [json.dumps(entry, separators=(", ", ": ")) for entry in entries]
    return '{"format": 1, "models": [\n' + ",\n".join(lines) + "\n]}\n"


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
    text = render(build(base_configs, from_hub=args.from_hub))
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
        if current != text:
            print(f"{args.out} is out of date: run scripts/build_catalog.py", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {text.count(chr(10)) - 2} models to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
