"""loraguard check vs the PEFT way, on a Qwen2.5-0.5B-shaped random base with an all-linear r=16 adapter.

Measured side by side in one run:
  (1) `loraguard check ADAPTER --base BASE` as a cold process (CLI start-up included);
  (2) the PEFT way, also a cold process: import torch/transformers/peft, load the base, load the
      adapter, one forward pass (what a user runs to find out whether an adapter works);
  (3) the library call `loraguard.check()` in a warm process;
  (4) one plain read of the adapter file (page cache warm), the floor for (3).
Targets: (2)/(1) >= 10; (3)/(4) <= 5.

Usage: python benchmarks/check_vs_peft.py [--workdir .bench] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

PEFT_WAY = """
import sys, torch
from transformers import AutoModelForCausalLM
from peft import PeftModel
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.bfloat16)
model = PeftModel.from_pretrained(model, sys.argv[2])
with torch.inference_mode():
    model(input_ids=torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]]))
"""


def build(workdir: Path) -> tuple[Path, Path]:
    """A random Qwen2.5-0.5B-shaped base (bf16 safetensors, real config numbers) and a PEFT adapter."""
    base, adapter = workdir / "qwen2.5-0.5b-random", workdir / "all-linear-r16"
    if (base / "config.json").is_file() and (adapter / "adapter_model.safetensors").is_file():
        return base, adapter
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, Qwen2Config

    cfg = Qwen2Config(
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        vocab_size=151936,
        max_position_embeddings=32768,
        tie_word_embeddings=True,
        rope_theta=1000000.0,
    )
    cfg.architectures = ["Qwen2ForCausalLM"]
    torch.manual_seed(0)
    with torch.device("cpu"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model.save_pretrained(base)
    peft_model = get_peft_model(
        model,
        LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM"),
    )
    peft_model.save_pretrained(adapter)
    return base, adapter


def timed(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        out.append(time.perf_counter() - t)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{cmd[:3]} failed: {proc.stderr[-2000:]}")
    return out


def in_process(fn, runs: int) -> list[float]:
    fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path(".bench"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    base, adapter = build(args.workdir)
    weights = adapter / "adapter_model.safetensors"
    cli = [sys.executable, "-m", "loraguard", "check", str(adapter), "--base", str(base)]
    t_cli = timed(cli, args.runs)
    t_peft = timed([sys.executable, "-c", PEFT_WAY, str(base), str(adapter)], max(2, args.runs // 2))

    from loraguard.checks.checker import check

    report = check(adapter, base)
    t_lib = in_process(lambda: check(adapter, base), args.runs * 4)
    t_read = in_process(lambda: weights.read_bytes(), args.runs * 4)
    med = {k: statistics.median(v) for k, v in {"cli": t_cli, "peft": t_peft, "lib": t_lib, "read": t_read}.items()}
    size_mb = weights.stat().st_size / 1e6
    print(f"adapter: {weights} ({size_mb:.1f} MB, {report.adapter['tensors']} tensors); verdict {report.verdict.value}")
    print("| measurement | median | runs |")
    print("|---|---:|---:|")
    print(f"| (1) `loraguard check` CLI, cold process | {med['cli'] * 1000:.0f} ms | {len(t_cli)} |")
    print(
        "| (2) PEFT way: import, load base, load adapter, one forward, cold process | "
        f"{med['peft'] * 1000:.0f} ms | {len(t_peft)} |"
    )
    print(f"| (3) `loraguard.check()` library call, warm | {med['lib'] * 1000:.1f} ms | {len(t_lib)} |")
    print(f"| (4) plain read of the adapter file, warm | {med['read'] * 1000:.1f} ms | {len(t_read)} |")
    r1, r2 = med["peft"] / med["cli"], med["lib"] / med["read"]
    print(f"\nCLI speed-up over the PEFT way: {r1:.1f}x (target >= 10x): {'PASS' if r1 >= 10 else 'FAIL'}")
    print(f"library call / plain read: {r2:.2f}x (target <= 5x): {'PASS' if r2 <= 5 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
