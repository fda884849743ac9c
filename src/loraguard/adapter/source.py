"""Where an adapter's files are: a local folder, or a Hub repo id fetched into the Hugging Face cache.

The one adapter locator is `resolve_adapter_folder`: score, probe and the Ray workers (through the
adapter host, `loraguard.scoring.host.check_adapter`) and the registry (which hashes the folder; the
server then loads the registry's verified copies) all find an adapter with it. The static `check`
reads through `reader.read_adapter`, which accepts a single weights file too and turns a failed
fetch into a finding; it uses the same `is_repo_id` and `fetch_adapter_snapshot`.
"""

from __future__ import annotations

import re
from pathlib import Path

from loraguard.errors import AdapterNotFoundError, HubUnavailableError, InputError

__all__ = ["HUB_PATTERNS", "fetch_adapter_snapshot", "is_repo_id", "resolve_adapter_folder"]

HUB_PATTERNS = [
    "adapter_config.json",
    "adapter_model.safetensors",
    "README.md",
    "trainer_state.json",
    "all_results.json",
    "eval_results.json",
    "training_args.bin",
]
"""The small files fetched for a Hub adapter: its config, its safetensors weights and its training notes."""
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_repo_id(source: str | Path) -> bool:
    """Whether `source` (a string; a `Path` never is) reads as a Hub repo id `org/name`."""
    return isinstance(source, str) and _REPO_ID.match(source) is not None


def fetch_adapter_snapshot(repo_id: str) -> Path:
    """The local snapshot of Hub adapter `repo_id`, with only its small files (`HUB_PATTERNS`).

    Honours the Hugging Face cache and `HF_HUB_OFFLINE`; offline, not found or gated and not cached →
    `HubUnavailableError`.
    """
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, allow_patterns=HUB_PATTERNS))
    except Exception as exc:  # offline, not found, gated: all are "cannot read" for the user
        raise HubUnavailableError(
            f"{repo_id}: could not fetch the adapter from the Hugging Face Hub "
            f"and it is not in the local cache ({type(exc).__name__}). Check the network or "
            "download it and pass the local folder.",
            path=repo_id,
        ) from exc


def resolve_adapter_folder(source: str | Path) -> Path:
    """The local folder holding adapter `source`: an existing folder (resolved), or a Hub id's snapshot.

    A Hub id (`org/name`, given as a string) is fetched with `fetch_adapter_snapshot`. A single file →
    `InputError` (pass its folder); nothing at all → `AdapterNotFoundError`.
    """
    text = str(source)
    local = Path(text).expanduser()
    if local.is_dir():
        return local.resolve()
    if local.exists():
        raise InputError(
            f"{local}: a file, not a folder. Pass the adapter's folder (adapter_config.json and "
            "its weights), so every file of it is read.",
            path=local,
        )
    if is_repo_id(source):
        return fetch_adapter_snapshot(text).resolve()
    raise AdapterNotFoundError(
        f"{local}: no such folder. Pass a PEFT adapter folder or a Hub repo id (org/name).", path=local
    )
