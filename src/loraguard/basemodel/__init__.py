"""What loraguard knows about base models, from `config.json` (or a GGUF file's header) only.

- `spec`: the contract (`ModuleShape`, `BaseSpec`, `InferredBase`, layer-name helpers);
- `families`: module shapes of common decoder families derived from config.json (no torch);
- `skeleton`: any other architecture, listed from a transformers skeleton on `meta` (cached);
- `catalog`: popular open bases as data (`catalog.json`);
- `gguf`: a llama.cpp / Ollama `.gguf` file -> the same `BaseSpec`, from its header (bounded reader);
- `resolve`: a folder / config.json / .gguf / catalog name / Hub id -> `BaseSpec`; quantized-name helpers;
- `infer`: which catalog bases an adapter's tensor shapes fit.

Importing this package imports none of them: import the submodule you need.
"""

from __future__ import annotations
