"""Scoring speed on real weights: SmolLM2-135M-Instruct on Jigsaw rows, against the machine's own limit.

Measured side by side in one run (torch on `--threads` threads):

  (g) bf16 and float32 GEMM throughput at the model's own layer shapes (`F.linear` on `--gemm-tokens`
      tokens: q/o 576x576, k/v 576x192, gate/up 576x1536, down 1536x576): the machine's limit
  (a) `score` as the CLI runs it by default (`--dtype auto`: float32 on a CPU)
  (b) `score --dtype bfloat16`, the opt-in (native bf16 units: AMX or AVX-512 BF16)
  (c) the case study's loop: chat-v2 prompt, greedy `generate` of up to 10 tokens, batch 1, float32,
      3-stage parse (on `--loop-rows` rows: it is slow; its rows/s is compared)
  (p) `loraguard probe` on 16 built-in rows with a trained adapter, a fresh process, model load included

Reported: computed tokens/s of (a) and (b) as a fraction of (g)'s limit in their dtype (the FLOPs of
the tokens actually computed, 2 x the decoder's matmul parameters per token, the prefix cache's skipped
tokens excluded); (a) / (c) and (b) / (c) in rows/s; (b) / (a) and the per-rule AUC of both (the
price of bf16); the probe's wall time.

    .venv/bin/python benchmarks/real_score.py [--rows 300] [--data ../shared/data/jigsaw-acrc/train.csv]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "jigsaw-acrc" / "train.csv"
MODEL = "smollm2-135m-instruct"
ADAPTER = REPO / "src" / "loraguard" / "demo" / "adapters" / "healthy"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--rows", type=int, default=300)
    p.add_argument("--loop-rows", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--gemm-tokens", type=int, default=2048)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def sample_rows(path: Path, n: int, seed: int, out: Path) -> Path:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    random.Random(seed).shuffle(rows)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[:n])
    return out


def gemm_flops(torch: Any, dtype: Any, tokens: int, shapes: Sequence[tuple[int, int]], repeats: int = 20) -> float:
    """Best-of-3 FLOP/s of `F.linear` over the layer shapes, as one decoder layer uses them."""
    x = {d_in: torch.randn(tokens, d_in, dtype=dtype) for d_in, _ in shapes}
    w = [torch.randn(d_out, d_in, dtype=dtype) for d_in, d_out in shapes]
    flops = sum(2 * tokens * d_in * d_out for d_in, d_out in shapes) * repeats
    best = float("inf")
    with torch.inference_mode():
        for weight, (d_in, _) in zip(w, shapes, strict=True):  # warm-up
            torch.nn.functional.linear(x[d_in], weight)
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(repeats):
                for weight, (d_in, _) in zip(w, shapes, strict=True):
                    torch.nn.functional.linear(x[d_in], weight)
            best = min(best, time.perf_counter() - t)
    return flops / best


def matmul_params_per_token(model: Any) -> int:
    """Parameters of the decoder's Linear layers (the LM head runs at one position per row only)."""
    import torch

    return sum(
        m.weight.numel()
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and "lm_head" not in name
    )


def score(data: Path, base: Path, dtype: str, out: Path) -> Any:
    from loraguard.scoring import score_file

    t = time.perf_counter()
    report = score_file(data, base, [ADAPTER], out=out, dtype=dtype, overwrite=True)
    return report.runs[0], time.perf_counter() - t


def case_study_loop(data: Path, base: Path) -> tuple[float, int]:
    """(c): generate + parse, batch 1, float32; returns (seconds, rows)."""
    from loraguard.demo.tiny import quiet
    from loraguard.scoring import score_rows
    from loraguard.scoring.data import load_rows
    from loraguard.scoring.host import load_host

    with quiet():
        host = load_host(base, [ADAPTER], dtype="float32")
    picked = load_rows(data)  # already `rows` rows long
    with host.activate(host.adapter_names[0]):
        t = time.perf_counter()
        result = score_rows(
            host.model, host.tokenizer, picked, template="chat-v2", method="generate", batch_size=1, prefix_cache=False
        )
    return time.perf_counter() - t, len(result.row_ids)


def probe_wall(base: Path) -> float:
    env = dict(os.environ)
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "loraguard", "probe", str(ADAPTER), "--base", str(base), "--format", "json"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    return time.perf_counter() - t


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from loraguard.models import ensure
    from loraguard.scoring.model import auto_dtype_reason, resolve_dtype

    base = ensure(MODEL)
    work = Path(tempfile.mkdtemp(prefix="real-score-"))
    data = sample_rows(args.data, args.rows, args.seed, work / "rows.csv")
    loop_data = sample_rows(args.data, args.loop_rows, args.seed, work / "loop.csv")
    auto = str(resolve_dtype("auto", "cpu")).removeprefix("torch.")
    print(
        f"rows {args.rows} of {args.data}, torch threads {args.threads}, "
        f"--dtype auto = {auto_dtype_reason('cpu', auto)}"
    )

    shapes = [(576, 576), (576, 192), (576, 192), (576, 576), (576, 1536), (576, 1536), (1536, 576)]
    g_bf16 = gemm_flops(torch, torch.bfloat16, args.gemm_tokens, shapes)
    g_fp32 = gemm_flops(torch, torch.float32, args.gemm_tokens, shapes)

    run_auto, t_auto = score(data, base, "auto", work / "auto.csv")
    run_bf16, t_bf16 = score(data, base, "bfloat16", work / "bf16.csv")
    t_loop, n_loop = case_study_loop(loop_data, base)
    t_probe = probe_wall(base)

    from loraguard.scoring.host import load_host

    params = matmul_params_per_token(load_host(base, dtype="float32").model)
    flop_per_token = 2 * params

    def tokens(run: Any) -> tuple[int, float]:
        t = run.result.timing
        return t.computed_tokens, t.computed_tokens / t.model_seconds

    c_auto, tps_auto = tokens(run_auto)
    _, tps_bf16 = tokens(run_bf16)
    share = run_auto.result.timing.prefix_tokens_skipped / run_auto.result.timing.prompt_tokens
    rows_auto, rows_bf16, rows_loop = args.rows / t_auto, args.rows / t_bf16, n_loop / t_loop
    print()
    print("| measurement | value |")
    print("|---|---:|")
    print(f"| (g) bf16 GEMM at the model's shapes ({args.gemm_tokens} tokens) | {g_bf16 / 1e12:.2f} TFLOP/s |")
    print(f"| (g) fp32 GEMM at the model's shapes | {g_fp32 / 1e12:.2f} TFLOP/s |")
    print(f"| decoder matmul FLOPs per computed token | {flop_per_token / 1e6:.0f} MFLOP |")
    print(f"| (a) score, defaults (--dtype auto = {auto}): wall | {t_auto:.1f} s ({rows_auto:.2f} rows/s) |")
    print(
        f"| (a) computed tokens/s (model time) | {tps_auto:,.0f} ({c_auto:,} tokens; "
        f"{100 * share:.0f}% skipped by the prefix cache) |"
    )
    print(f"| (b) score, --dtype bfloat16: wall | {t_bf16:.1f} s ({rows_bf16:.2f} rows/s) |")
    print(f"| (b) computed tokens/s (model time) | {tps_bf16:,.0f} |")
    print(
        f"| (c) case study's loop (generate 10, batch 1, fp32, parse) | "
        f"{t_loop:.1f} s for {n_loop} rows ({rows_loop:.2f} rows/s) |"
    )
    print(f"| (p) probe, 16 built-in rows, fresh process incl. model load | {t_probe:.1f} s |")
    a_auc, b_auc = run_auto.auc, run_bf16.auc
    diffs = {r: abs(a_auc.per_rule[r] - b_auc.per_rule[r]) for r in a_auc.per_rule if r not in a_auc.skipped_rules}
    print()
    print(f"| rule | AUC (a) {auto} | AUC (b) bfloat16 | |Δ| |")
    print("|---|---:|---:|---:|")
    for r, d in diffs.items():
        print(f"| {r[:60]} | {a_auc.per_rule[r]:.4f} | {b_auc.per_rule[r]:.4f} | {d:.4f} |")
    print(f"| pooled | {a_auc.auc:.4f} | {b_auc.auc:.4f} | {abs(a_auc.auc - b_auc.auc):.4f} |")
    import numpy as np

    max_dp = float(np.abs(run_auto.result.probabilities - run_bf16.result.probabilities).max())
    limit_a = g_bf16 if auto == "bfloat16" else g_fp32
    frac_a = tps_auto * flop_per_token / limit_a
    frac_b = tps_bf16 * flop_per_token / g_bf16
    print()
    print("| ratio | measured | target | |")
    print("|---|---:|---:|---|")
    ok = lambda cond: "PASS" if cond else "FAIL"  # noqa: E731
    print(f"| (a) tokens/s x FLOP/token / {auto} GEMM limit | {frac_a:.2f} | >= 0.4 | {ok(frac_a >= 0.4)} |")
    print(f"| (b) tokens/s x FLOP/token / bf16 GEMM limit | {frac_b:.2f} | >= 0.4 | {ok(frac_b >= 0.4)} |")
    print(f"| (a) / (c) rows/s | {rows_auto / rows_loop:.1f}x | >= 4x | {ok(rows_auto / rows_loop >= 4)} |")
    print(f"| (b) / (c) rows/s | {rows_bf16 / rows_loop:.1f}x | >= 4x | {ok(rows_bf16 / rows_loop >= 4)} |")
    print(f"| (b) / (a) rows/s | {rows_bf16 / rows_auto:.2f}x | >= 1.7x | {ok(rows_bf16 / rows_auto >= 1.7)} |")
    worst = max(diffs.values()) if diffs else 0.0
    print(f"| max per-rule AUC difference (b) vs (a) | {worst:.4f} | <= 0.01 | {ok(worst <= 0.01)} |")
    print(f"| max |ΔP(Yes)| (b) vs (a) | {max_dp:.4f} | (documented) | |")
    print(f"| (p) probe wall time | {t_probe:.1f} s | <= 15 s | {ok(t_probe <= 15)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
