"""From what a user typed (a folder, a config.json, a GGUF file, a catalog name, a Hub id) to a `BaseSpec`.

Only `config.json` (or a GGUF file's header) is ever read, and only config.json downloaded.
Quantized re-uploads (`-GPTQ-Int4`, `-bnb-4bit`, `unsloth/...`) resolve through the catalog's sourced
aliases; their names are normalised so that checks can relate them to the model they quantize.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loraguard.basemodel.catalog import CatalogEntry, catalog_spec, find_alias, find_entry, load_catalog
from loraguard.basemodel.families import spec_from_config
from loraguard.basemodel.gguf import find_gguf, is_gguf
from loraguard.basemodel.spec import BaseSpec
from loraguard.errors import BaseModelResolutionError, HubUnavailableError, InputLimitError
from loraguard.fileio import loads_bounded, read_bounded

__all__ = [
    "find_entry_loose",
    "is_local_path",
    "normalize_model_name",
    "quantization_of",
    "read_config",
    "resolve_base",
    "resolve_claimed_base",
    "spec_for_config",
    "unescape_modelscope",
]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(?:/[\w.-]+)?$")
"""`org/name`, or a legacy bare id such as `gpt2` or `t5-small`."""
# Folder names that are not organisations when they lead a `_name_or_path` ("models/Llama-3.2-1B").
_LOCAL_DIRS = frozenset(
    {
        "models",
        "model",
        "checkpoints",
        "checkpoint",
        "ckpt",
        "output",
        "outputs",
        "out",
        "tmp",
        "data",
        "weights",
        "base",
        "base_model",
        "pretrained",
        "cache",
        "workspace",
        "content",
        "runs",
        "results",
    }
)


MAX_CONFIG_BYTES = 16 << 20
"""Largest base config.json read (real ones are kilobytes; a 1,000-label id2label is ~30 KB)."""


def read_config(path: Path) -> dict[str, Any]:
    """The JSON object in `path`, or a `BaseModelResolutionError` saying what is wrong with it."""
    try:
        text = read_bounded(path, MAX_CONFIG_BYTES).decode("utf-8")
    except InputLimitError as exc:
        raise BaseModelResolutionError(
            f"{exc}. Pass the base model's original config.json.",
            path=path,
        ) from None
    except FileNotFoundError:
        raise BaseModelResolutionError(
            f"{path} does not exist. Pass a folder holding the base model's config.json, a config.json "
            "file, a catalog name (`loraguard catalog`) or a Hub id.",
            path=path,
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaseModelResolutionError(
            f"Cannot read {path}: {exc}. Check the file's permissions, or pass another copy of the "
            "base model's config.json.",
            path=path,
        ) from None
    try:
        loaded = loads_bounded(text)
    except ValueError as exc:
        raise BaseModelResolutionError(
            f"{path} is not valid JSON ({exc}). Pass the base model's original config.json.",
            path=path,
        ) from None
    if not isinstance(loaded, dict):
        raise BaseModelResolutionError(
            f"{path} holds a JSON {type(loaded).__name__}, not an object: not a config.json. "
            "Pass the base model's original config.json.",
            path=path,
        )
    return loaded


def _looks_local(name: str) -> bool:
    if not name or name.startswith(("/", ".", "~")) or not _HUB_ID.match(name):
        return True
    return "/" in name and name.split("/", 1)[0].lower() in _LOCAL_DIRS


def is_local_path(name: str) -> bool:
    """`name` is a path on some machine (`/kaggle/input/...`, `./out`, `C:\\models\\x`, `models/x`,
    `a/b/c`), not a Hub id (`org/name`, or a legacy bare id such as `gpt2`)."""
    text = name.strip()
    return bool(text) and _looks_local(text)


def _identity(config: Mapping[str, Any], config_path: Path) -> tuple[str, bool]:
    """`_name_or_path` when it names a Hub model, else the folder (`org__name` -> `org/name`); and
    whether that name is only a folder's name (not `_name_or_path`, not a Hub cache folder)."""
    folder = config_path.resolve().parent
    from_folder = folder.name
    cached = False
    for parent in (folder, *folder.parents):  # a Hub cache snapshot: models--org--name/snapshots/<sha>
        if parent.name.startswith("models--") and parent.name.count("--") >= 2:
            from_folder = parent.name[len("models--") :].replace("--", "/", 1)
            cached = True
            break
    else:
        org, sep, model = folder.name.partition("__")
        if sep and org and model and "__" not in model:
            from_folder = f"{org}/{model}"
    declared = config.get("_name_or_path")
    if isinstance(declared, str) and not _looks_local(declared.strip()):
        declared = declared.strip()
        # A bare name the folder qualifies ("Phi-3-mini-128k-instruct" in microsoft__Phi-3-...): the folder.
        if "/" not in declared and from_folder.lower().endswith("/" + declared.lower()):
            return from_folder, False
        return declared, False
    return from_folder, not cached


def spec_for_config(
    config: Mapping[str, Any], *, name: str, task: str | None = "CAUSAL_LM", path: str | None = None
) -> BaseSpec:
    """`families.spec_from_config`, else the transformers skeleton (multimodal, encoders, others)."""
    spec = spec_from_config(config, name=name, task=task, path=path)
    if spec is not None:
        return spec
    from loraguard.basemodel.skeleton import spec_from_skeleton

    return spec_from_skeleton(config, name=name, task=task, path=path)


def _suggestions(text: str) -> list[str]:
    """Catalog ids close to `text` (compared lower-case, on the full id and the part after `/`)."""
    by_key: dict[str, str] = {}
    for entry in load_catalog():
        by_key.setdefault(entry.name.lower(), entry.name)
        by_key.setdefault(entry.short_name.lower(), entry.name)
    matches = difflib.get_close_matches(text.lower(), list(by_key), n=6, cutoff=0.75)
    return list(dict.fromkeys(by_key[m] for m in matches))[:3]


def _catalog_hint(text: str = "") -> str:
    hint = f"one of the {len(load_catalog())} catalog names (`loraguard catalog`)"
    close = _suggestions(text) if text else []
    return hint + (f"; did you mean {' or '.join(close)}?" if close else ".")


def _from_hub(repo_id: str, task: str | None) -> BaseSpec:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    offline = (
        f"The config.json of {repo_id} could not be fetched (offline?) and is not in the local Hugging "
        f"Face cache. Pass a local folder with config.json, or {_catalog_hint(repo_id)}"
    )
    try:
        downloaded = hf_hub_download(repo_id, "config.json")
    except GatedRepoError:
        raise BaseModelResolutionError(
            f"{repo_id} is gated: its config.json needs an accepted licence and a token "
            f"(`hf auth login`). Or pass a local folder with its config.json, or {_catalog_hint()}",
        ) from None
    except RepositoryNotFoundError:
        raise BaseModelResolutionError(
            f"No Hub repository {repo_id} (or it is private). Check the id, or pass a local folder "
            f"with config.json, or {_catalog_hint(repo_id)}",
        ) from None
    except LocalEntryNotFoundError:
        raise HubUnavailableError(offline) from None
    except (EntryNotFoundError, RevisionNotFoundError):
        raise BaseModelResolutionError(
            f"{repo_id} has no config.json: not a transformers model repository (a GGUF or "
            f"adapter-only repo?). Pass the base model's folder or Hub id, or {_catalog_hint()}",
        ) from None
    except HFValidationError as exc:
        raise BaseModelResolutionError(f"{repo_id!r} is not a valid Hub id: {exc}") from None
    except Exception as exc:  # connection, proxy, TLS, rate limit...: never a traceback
        raise HubUnavailableError(f"{offline} ({type(exc).__name__}: {exc})") from None
    config = read_config(Path(downloaded))
    return spec_for_config(config, name=repo_id, task=task, path=str(downloaded))


def _from_gguf(path: Path, task: str | None) -> BaseSpec:
    from loraguard.basemodel.gguf import spec_from_gguf  # imports the gguf package: only for GGUF bases

    return spec_from_gguf(path, task=task)


def resolve_base(ref: str | os.PathLike[str], *, task: str | None = "CAUSAL_LM") -> BaseSpec:
    """The `BaseSpec` of a base model given as a folder, a config.json, a GGUF file, a catalog name or a Hub id.

    Order: an existing file (a `.gguf` or a config.json) or folder (its config.json, else its one
    `.gguf` model); a catalog name; a Hub id (only its config.json is downloaded, honouring the HF
    cache and `HF_HUB_OFFLINE`). Raises
    `BaseModelResolutionError` for anything unreadable or unknown, `HubUnavailableError` when the
    Hub cannot be reached and the file is not cached.
    """
    text = os.fspath(ref).strip()
    candidate = Path(text).expanduser()
    entry = find_entry(text) if text else None
    bare_folder = bool(text) and candidate.is_dir() and not (candidate / "config.json").is_file()
    folder_gguf = find_gguf(candidate) if bare_folder else None
    if text and candidate.is_file():
        if is_gguf(candidate):
            return _from_gguf(candidate, task)
        config_path = candidate
    elif folder_gguf is not None:  # a folder without config.json holding one .gguf model
        return _from_gguf(folder_gguf, task)
    elif text and candidate.is_dir() and ((candidate / "config.json").is_file() or entry is None):
        config_path = candidate / "config.json"
        if not config_path.is_file():
            raise BaseModelResolutionError(
                f"The folder {candidate} has no config.json (nor a .gguf model). Pass the folder of a "
                f"transformers model (it holds config.json), a .gguf file, or {_catalog_hint()}",
                path=candidate,
            )
    elif entry is not None:  # also when a folder without config.json happens to share its name
        twin = find_alias(text)  # a quantized twin keeps its own name: its architecture is the entry's
        spec = catalog_spec(entry, task)
        return dataclasses.replace(spec, name=twin[0].name) if twin is not None else spec
    elif text and _HUB_ID.match(text):
        return _from_hub(text, task)
    else:
        raise BaseModelResolutionError(
            f"Base model {text!r} is not a folder, a config.json, a catalog name or a Hub id (org/name). "
            f"Pass a local folder with config.json, a .gguf file, or {_catalog_hint(text)}",
        )
    return _config_spec(config_path, task)


_SPECS: OrderedDict[tuple[Any, ...], BaseSpec] = OrderedDict()
_SPECS_KEPT = 64


def _config_spec(config_path: Path, task: str | None) -> BaseSpec:
    """The spec of a local config.json, built once per file version: a matrix checks every adapter
    against the same few bases, and a spec (module list, name sets) is immutable once built. Keyed by
    the file's identity and change stamp, so an edited config.json is read again."""
    try:
        st = config_path.stat()
        key: tuple[Any, ...] | None = (str(config_path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, task)
    except OSError:
        key = None  # read_config names the file in its error
    if key is not None and (hit := _SPECS.get(key)) is not None:
        _SPECS.move_to_end(key)
        return hit
    config = read_config(config_path)
    name, from_folder = _identity(config, config_path)
    spec = spec_for_config(config, name=name, task=task, path=str(config_path))
    if from_folder:
        spec = dataclasses.replace(spec, name_from_folder=True)
    if key is not None:
        _SPECS[key] = spec
        if len(_SPECS) > _SPECS_KEPT:
            _SPECS.popitem(last=False)
    return spec


def resolve_claimed_base(name: str, *, task: str | None = "CAUSAL_LM") -> BaseSpec | None:
    """The base an adapter claims (`base_model_name_or_path`), without network; None if unknown.

    Tries: the catalog and its aliases (`unsloth/Qwen2.5-1.5B-Instruct-bnb-4bit`, whose spec then
    carries the catalog name); a local folder or .gguf file; the local Hugging Face cache, also for a path
    into a cache (`.../models--org--name/snapshots/...`); then, for a local path or a bare name only, the
    catalog model it is named after (`/workspace/gemma3-270m`, ModelScope's `Qwen2___5-1___5B-Instruct`).
    A Hub id outside the catalog is not guessed from its name: a re-upload may change the architecture.
    """
    text = name.strip() if isinstance(name, str) else ""
    if not text:
        return None
    entry = find_entry(text)
    if entry is not None:
        return catalog_spec(entry, task)
    local = Path(text).expanduser()
    local_model = local.is_dir() and ((local / "config.json").is_file() or find_gguf(local) is not None)
    if local_model or (local.is_file() and is_gguf(local)):
        return resolve_base(local, task=task)
    if _HUB_ID.match(text):
        cached = _cached_config(text)
        if cached is not None:
            return spec_for_config(read_config(cached), name=text, task=task, path=str(cached))
    in_cache = _HF_CACHE_DIR.search(text.replace("\\", "/"))
    if in_cache is not None:  # a Hub cache snapshot elsewhere: its folder names the Hub id
        return resolve_claimed_base(f"{in_cache[1]}/{in_cache[2]}", task=task)
    if "/" in text and not _looks_local(text) and "___" not in text:  # `___`: a ModelScope folder
        return None
    loose = find_entry_loose(text)
    return catalog_spec(loose, task) if loose is not None else None


_HF_CACHE_DIR = re.compile(r"(?:^|/)models--([^/]+?)--([^/]+)(?:/|$)")
"""A Hugging Face cache folder, `models--org--name`: the Hub id `org/name`."""


def _cached_config(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # invalid id, unreadable cache: treat as not cached
        return None
    return Path(found) if isinstance(found, str) else None


# ---------------------------------------------------------------- quantized variants and re-uploads

_QUANT_SUFFIX = re.compile(
    r"[-_.](?:gptq(?:-int[48])?|awq|bnb(?:-[48]bit)?|unsloth(?:-bnb-[48]bit)?|gguf|mlx(?:-\d+bits?)?|"
    r"exl2|hqq|aqlm|eetq|fp8(?:-dynamic)?|fp16|bf16|int[48]|w[48]a(?:8|16)|[2-8]bits?|q[2-8](?:_k)?(?:_[msl])?|"
    r"q8_0|quantized|dynamic)$",
    re.IGNORECASE,
)
# Old names of renamed models: the catalog uses the current name.
_ALIASES = (
    ("meta-llama-3.1-", "llama-3.1-"),
    ("meta-llama-3.2-", "llama-3.2-"),
    ("meta-llama-3-", "llama-3-"),
)


def unescape_modelscope(name: str) -> str:
    """`name` with ModelScope's escape of `.` (`___`, as in `Qwen2___5-1___5B-Instruct`) undone."""
    return name.replace("___", ".")


def normalize_model_name(name: str) -> str:
    """The bare, lower-case model name with quantization suffixes and the organisation removed.

    `unsloth/Qwen2.5-1.5B-Instruct-bnb-4bit`, `Qwen/Qwen2.5-1.5B-Instruct-GPTQ-Int4` and
    `Qwen/Qwen2.5-1.5B-Instruct` all give `qwen2.5-1.5b-instruct`; a local path gives its last
    folder's name (ModelScope's `Qwen2___5-1___5B-Instruct` too). A catalog alias gives the name of
    the model it was made from (`unsloth/mistral-7b-bnb-4bit`: `mistral-7b-v0.1`).
    """
    twin = find_alias(name)
    if twin is not None:
        name = twin[1].name
    bare = unescape_modelscope(name.strip().rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1].lower())
    while True:
        stripped = _QUANT_SUFFIX.sub("", bare)
        if stripped == bare or not stripped:
            break
        bare = stripped
    for old, new in _ALIASES:
        if bare.startswith(old):
            bare = new + bare[len(old) :]
    return bare


def _compact(name: str) -> str:
    return re.sub(r"[-_.\s]", "", name)


def find_entry_loose(name: str) -> CatalogEntry | None:
    """The catalog entry a re-upload, quantization or local copy of a model is named after.

    Compares `normalize_model_name` of both sides, then the same without separators
    (`gemma3-270m-it` finds `google/gemma-3-270m-it`). Ambiguities keep the first entry by name.
    """
    wanted = normalize_model_name(name)
    if not wanted:
        return None
    entries = load_catalog()
    for entry in entries:
        if normalize_model_name(entry.name) == wanted:
            return entry
    compact = _compact(wanted)
    for entry in entries:
        if _compact(normalize_model_name(entry.name)) == compact:
            return entry
    return None


_METHODS = {"bitsandbytes": "bnb", "bitsandbytes_4bit": "bnb", "bitsandbytes_8bit": "bnb"}
_NAME_TOKENS = (
    ("gptq", "gptq"),
    ("awq", "awq"),
    ("bnb", "bnb"),
    ("gguf", "gguf"),
    ("mlx", "mlx"),
    ("exl2", "exl2"),
    ("hqq", "hqq"),
    ("aqlm", "aqlm"),
    ("eetq", "eetq"),
    ("fp8", "fp8"),
)


def quantization_of(name: str | None, config: Mapping[str, Any] | None = None) -> str | None:
    """`gptq`, `awq`, `bnb`, `gguf`, `mlx`, `fp8`... when the model is a quantized checkpoint, else None.

    `config["quantization_config"]["quant_method"]` wins; MLX configs carry `quantization`
    (bits, group_size) without a method. Otherwise name tokens decide (`-GPTQ-Int4`, `-AWQ`,
    `-bnb-4bit`, `-GGUF`, `mlx-community/...-4bit`); a bare `-4bit`/`-8bit` is `bnb` for unsloth
    uploads and `mlx` for mlx-community ones, else `4bit`/`8bit`.
    """
    if isinstance(config, Mapping):
        qc = config.get("quantization_config")
        if isinstance(qc, Mapping):
            method = qc.get("quant_method")
            if isinstance(method, str) and method:
                return _METHODS.get(method.lower(), method.lower())
            if qc.get("load_in_4bit") or qc.get("load_in_8bit") or "bnb_4bit_quant_type" in qc:
                return "bnb"
            if "bits" in qc or "group_size" in qc:
                return "mlx" if isinstance(config.get("quantization"), Mapping) else "unknown"
        if isinstance(config.get("quantization"), Mapping):
            return "mlx"
    if not name:
        return None
    lowered = name.strip().lower()
    tokens = set(re.split(r"[-_./\s]", lowered))
    for token, method in _NAME_TOKENS:
        if token in tokens:
            return method
    org = lowered.split("/", 1)[0] if "/" in lowered else ""
    for bits in ("2bit", "3bit", "4bit", "6bit", "8bit"):
        if bits in tokens or f"{bits}s" in tokens:
            return "mlx" if org == "mlx-community" else "bnb" if org == "unsloth" else bits
    if tokens & {"int4", "int8", "w4a16", "w8a8", "w8a16"}:
        return "int4" if "int4" in tokens or "w4a16" in tokens else "int8"
    return None
