"""Memory of `loraguard score` against the size of its CSV: chunked reading vs holding the whole file.

Run: python benchmarks/score_memory.py [--sizes 20,200] [--whole-up-to 20] [--budget-size 200]

Each run is a fresh process (peak RSS from `os.wait4`) scoring a generated Jigsaw CSV with a tiny random
Qwen2 (hidden 64, 2 layers: the model is not what is measured). Rows are ~830 bytes whose examples are
shared, so the tiny model scores them fast; memory comes from the rows' texts, prompts and token ids.
Modes, side by side in one run:

- `chunked`: `score` as it is (`LocalExecutor`'s default, `CHUNK_ROWS` rows at a time);
- `whole`: the same code with one chunk holding every row (`LocalExecutor(chunk_rows=10**9)`), which is
  what `score` did before it read in chunks (every row, prompt and token id list in memory at once).
  Only up to `--whole-up-to` MB: at 200 MB it would need ~30 GB on a 24 GB machine.

Columns: the file's size and rows, peak RSS, peak RSS above a 200-row run of the same mode (the
process's fixed cost: Python, torch, the model), seconds until the first chunk reaches the model (the
checking pass, loading and the context check before it), and the whole run. A last run scores the
`--budget-size` file with `--time-budget 2m` through the CLI and records when and how it stopped.

What chunks cost on real rows: each chunk runs each rule's shared prompt prefix once. When the real
model's tokenizer is cached (`loraguard models pull smollm2-135m-instruct`) and ../shared's Jigsaw
train.csv is there, the tokens the model computes for it (the `chat` template) are counted whole and in
chunks (no model runs: `batching.plan_prefix_groups` on the token ids).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BODY = "lorem ipsum dolor sit amet, consectetur adipiscing elit, é ü 字 " * 12
COLUMNS = "row_id,body,rule,subreddit,positive_example_1,positive_example_2,negative_example_1,negative_example_2"
MB = 2**20

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import loraguard.scoring.logits as logits
from loraguard.scoring.local import LocalExecutor
from loraguard.scoring.pipeline import score_file
first = []
real = logits.score_logits
def timed(*a, **k):
    if not first:
        first.append(time.perf_counter() - t0)
    return real(*a, **k)
logits.score_logits = timed
data, base, out, chunk = sys.argv[1:5]
r = score_file(data, base, out=out, batch_size=32, show_progress=False, executor=LocalExecutor(int(chunk)))
print(json.dumps({"rows": len(r.runs[0].result.row_ids), "first": first[0], "total": time.perf_counter() - t0}))
"""


def rows_text(start: int, stop: int) -> str:
    return "".join(f'{i},"{BODY}{i}",No spam {i % 3},r/x,buy,sell,hi,yo,{i % 2}\n' for i in range(start, stop))


def write_csv(path: Path, megabytes: float) -> int:
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(COLUMNS + ",rule_violation\n")
        while f.tell() < megabytes * MB:
            f.write(
                "".join(
                    f'{i},"{BODY}{i}",No spam {i % 3},r/x,buy,sell,hi,yo,{i % 2}\n' for i in range(rows, rows + 1000)
                )
            )
            rows += 1000
    return rows


def run(data: Path, base: Path, out: Path, chunk: int) -> dict[str, float]:
    """`run_child`, with the child's own peak RSS (`wait4` before `communicate` reaps it)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data), str(base), str(out), str(chunk)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"child failed ({proc.returncode}):\n{stderr.decode()[-3000:]}")
    found = json.loads(stdout.decode().strip().splitlines()[-1])
    found["peak_mb"] = usage.ru_maxrss / 1024
    out.unlink(missing_ok=True)
    return found


def real_prefix_cost(chunk_rows: int) -> str | None:
    """Computed tokens of ../shared's train.csv whole vs in chunks (None without the tokenizer or data)."""
    data = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "jigsaw-acrc" / "train.csv"
    folder = Path.home() / ".cache" / "loraguard" / "models" / "smollm2-135m-instruct" / "hf"
    if not data.is_file() or not (folder / "tokenizer.json").is_file():
        return None
    from transformers import AutoTokenizer

    from loraguard.scoring.api import encode_prompts
    from loraguard.scoring.batching import plan_prefix_groups
    from loraguard.scoring.data import load_rows

    rows = load_rows(data)
    encoded = encode_prompts(AutoTokenizer.from_pretrained(folder), rows.rows, "chat")
    ids, rules = encoded.input_ids, rows.rules

    def computed(size: int) -> int:
        total = 0
        for start in range(0, len(ids), size):
            groups, _ = plan_prefix_groups(ids[start : start + size], rules[start : start + size])
            total += sum(len(i) for i in ids[start : start + size])
            total -= sum(len(g.prefix_ids) * (len(g.rows) - 1) for g in groups)
        return total

    whole, chunked = computed(len(ids)), computed(chunk_rows)
    prefixes = sorted(len(g.prefix_ids) for g in plan_prefix_groups(ids, rules)[0])
    return (
        f"{data.name} ({len(ids)} rows, {sum(len(i) for i in ids):,} prompt tokens, shared prefixes {prefixes} "
        f"tokens): {whole:,} tokens computed whole, {chunked:,} in chunks of {chunk_rows} "
        f"({chunked / whole - 1:+.2%})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="20,200", help="CSV sizes in MB, comma separated")
    ap.add_argument("--whole-up-to", type=float, default=20, help="largest size (MB) also run the old way")
    ap.add_argument("--budget-size", type=float, default=200, help="size (MB) scored with --time-budget 2m")
    args = ap.parse_args()
    from loraguard.demo.tiny import build_tiny_base
    from loraguard.scoring.local import CHUNK_ROWS

    sizes = [float(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        base = build_tiny_base(tmp / "base", hidden_size=64, num_layers=2, initializer_range=0.8, seed=0)
        files = {}
        small = tmp / "small.csv"
        with small.open("w", encoding="utf-8") as f:
            f.write(COLUMNS + ",rule_violation\n")
            f.write(rows_text(0, 200))
        for size in sorted({*sizes, args.budget_size}):
            path = tmp / f"d{size:g}.csv"
            files[size] = (path, write_csv(path, size))
        modes = {"chunked": CHUNK_ROWS, "whole": 10**9}
        fixed = {m: run(small, base, tmp / "p.csv", c)["peak_mb"] for m, c in modes.items()}
        shown = ", ".join(f"{m} {v:.0f}" for m, v in fixed.items())
        print(f"chunk rows {CHUNK_ROWS}; peak RSS of 200 rows (MB): {shown}")
        heads = ("file MB", "rows", "mode", "peak MB", "above", "first s", "total s", "rows/s")
        print(" ".join(f"{h:>8}" for h in heads))
        results: dict[tuple[float, str], dict[str, float]] = {}
        for size in sizes:
            path, rows = files[size]
            for mode, chunk in modes.items():
                if mode == "whole" and size > args.whole_up_to:
                    continue
                r = run(path, base, tmp / "p.csv", chunk)
                assert r["rows"] == rows
                results[(size, mode)] = r
                mb = path.stat().st_size / MB
                print(
                    f"{mb:8.1f} {rows:8d} {mode:>8} {r['peak_mb']:8.0f} {r['peak_mb'] - fixed[mode]:8.0f} "
                    f"{r['first']:8.1f} {r['total']:8.1f} {rows / r['total']:8.0f}",
                    flush=True,
                )
        for size in sizes:
            if (size, "whole") in results:
                w, c = results[(size, "whole")], results[(size, "chunked")]
                print(
                    f"{size:g} MB: whole/chunked peak {w['peak_mb'] / c['peak_mb']:.2f}x, above the fixed cost "
                    f"{(w['peak_mb'] - fixed['whole']) / max(c['peak_mb'] - fixed['chunked'], 1):.1f}x; "
                    f"time chunked/whole {c['total'] / w['total']:.2f}"
                )
        if len(sizes) >= 2:
            lo, hi = min(sizes), max(sizes)
            grow = results[(hi, "chunked")]["peak_mb"] - results[(lo, "chunked")]["peak_mb"]
            print(
                f"chunked: {grow:+.0f} MB of peak from {lo:g} MB to {hi:g} MB of CSV ({grow / (hi - lo):.2f} MB per MB)"
            )
        path, rows = files[args.budget_size]
        cmd = [sys.executable, "-m", "loraguard", "score", str(path), "--base", str(base), "--out", str(tmp / "b.csv")]
        cmd += ["--batch-size", "32", "--time-budget", "2m", "-q"]
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        took = time.perf_counter() - started
        message = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "(no message)"
        print(f"{args.budget_size:g} MB with --time-budget 2m: exit {proc.returncode} after {took:.1f}s: {message}")
    cost = real_prefix_cost(CHUNK_ROWS)
    print(cost or "real rows: skipped (no cached smollm2-135m-instruct tokenizer or no ../shared train.csv)")


if __name__ == "__main__":
    main()
