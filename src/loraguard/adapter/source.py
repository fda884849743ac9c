"""Where an adapter's files are: a local folder, or a Hub repo id resolved to its cached snapshot.

Shared by everything that needs the adapter as a folder of files (score, probe and the server load it;
the registry hashes it). The static `check` reads Hub ids itself (`reader.read_adapter`), fetching
the same small files.
"""

from __future__ import annotations

from pathlib import Path

from loraguard.errors import AdapterNotFoundError, HubUnavailableError, InputError

__all__ = ["resolve_adapter_folder"]


def resolve_adapter_folder(source: str | Path) -> Path:
    """The local folder holding adapter `source`: an existing folder (resolved), or a Hub id's snapshot.

    A Hub id (`org/name`, given as a string) is fetched with the adapter reader's file patterns,
    honouring the Hugging Face cache and `HF_HUB_OFFLINE`; offline and not cached →
    `HubUnavailableError`. A single file → `InputError` (pass its folder); nothing at all →
    `AdapterNotFoundError`.
    """
    from loraguard.adapter.reader import _REPO_ID, ReadProblem, _fetch_from_hub

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
    if isinstance(source, str) and _REPO_ID.match(text) and not text.startswith((".", "/", "~")):
        fetched = _fetch_from_hub(text)
        if isinstance(fetched, ReadProblem):
            raise HubUnavailableError(fetched.message, path=text)
        return fetched.resolve()
    raise AdapterNotFoundError(
        f"{local}: no such folder. Pass a PEFT adapter folder or a Hub repo id (org/name).", path=local
    )
