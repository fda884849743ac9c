"""How far bf16 moves SmolLM2-135M-Instruct's answer, with and without a LoRA adapter (issue 12).

Run: python benchmarks/bf16_deviation.py [--rows 96] [--adapter src/loraguard/demo/adapters/healthy]

Loads the real model (`loraguard models pull smollm2-135m-instruct` first) once in float32 and once in
bfloat16, each with the adapter attached, and scores the first `--rows` rows of the Jigsaw train.csv
one row at a time (no padding, no cache: nothing but the dtype differs) with the `chat` template, the
bare base and the adapter alike. For each it prints the logit difference d = logsumexp(Yes ids) -
logsumexp(No ids) in float32, how much bf16 moves d and P(Yes) = sigmoid(d), and the pooled and per-rule
AUCs in both dtypes. Accuracy only: nothing is timed, so it may run beside other work.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "jigsaw-acrc" / "train.csv"


def logit_differences(rows: object, adapter: Path, dtype: str) -> dict[str, np.ndarray]:
    import torch

    from loraguard.scoring.answers import answer_tokens
    from loraguard.scoring.api import encode_prompts
    from loraguard.scoring.host import load_host

    host = load_host("smollm2-135m-instruct", [adapter], dtype=dtype, device="cpu")
    answers = answer_tokens(host.tokenizer, ("Yes", "No"))
    encoded = encode_prompts(host.tokenizer, rows.rows, "chat")  # type: ignore[attr-defined]
    pos, neg = list(answers.positive_ids), list(answers.negative_ids)
    out: dict[str, np.ndarray] = {}
    for name in (None, host.adapter_names[0]):
        with host.activate(name), torch.inference_mode():
            d = []
            for ids in encoded.input_ids:
                logits = host.model(input_ids=torch.tensor([ids])).logits[0, -1].float()
                d.append(float(torch.logsumexp(logits[pos], 0) - torch.logsumexp(logits[neg], 0)))
        out["base" if name is None else "adapter"] = np.asarray(d)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=96)
    ap.add_argument("--adapter", type=Path, default=ROOT / "src/loraguard/demo/adapters/healthy")
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    if not args.data.is_file():
        sys.exit(f"{args.data}: no such file (the Jigsaw train.csv of ../shared)")
    import torch

    from loraguard.scoring.data import load_rows
    from loraguard.scoring.metrics import auc_report

    torch.set_num_threads(1)
    rows = load_rows(args.data, limit=args.rows)
    fp32 = logit_differences(rows, args.adapter, "float32")
    bf16 = logit_differences(rows, args.adapter, "bfloat16")

    def sigmoid(x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-x))

    print(f"{len(rows)} rows of {args.data.name}, template chat, adapter {args.adapter.name}")
    print(f"{'':8} {'mean |d|':>9} {'mean P':>7} {'|Δd| mean':>10} {'|Δd| max':>9} {'|ΔP| mean':>10} {'|ΔP| max':>9}")
    for key in fp32:
        dd, dp = np.abs(fp32[key] - bf16[key]), np.abs(sigmoid(fp32[key]) - sigmoid(bf16[key]))
        print(
            f"{key:8} {np.abs(fp32[key]).mean():9.3f} {sigmoid(fp32[key]).mean():7.3f} {dd.mean():10.3f} "
            f"{dd.max():9.3f} {dp.mean():10.4f} {dp.max():9.4f}"
        )
    assert rows.labels is not None
    for key in fp32:
        a = auc_report(rows.labels, sigmoid(fp32[key]), rows.rules)
        b = auc_report(rows.labels, sigmoid(bf16[key]), rows.rules)
        worst = max(abs(a.per_rule[r] - b.per_rule[r]) for r in a.per_rule)
        print(f"{key}: pooled AUC {a.auc:.4f} fp32 / {b.auc:.4f} bf16; largest per-rule |ΔAUC| {worst:.4f}")
        for rule in a.per_rule:
            print(f"  {rule[:40]:40} {a.per_rule[rule]:.4f} / {b.per_rule[rule]:.4f}")


if __name__ == "__main__":
    main()
