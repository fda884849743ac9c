"""The committed reference adapters (`src/loraguard/demo/adapters/`), trained on the real
SmolLM2-135M-Instruct: their files and training records, and what every command says of them on the
real model (probe, score, generate-and-parse, gate, serve). The real-model tests skip with the command
to run when the model is not in loraguard's cache; `.ci/run` pulls it."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import loraguard
from loraguard.models.catalog import KNOWN_MODELS

ADAPTERS = Path(loraguard.__file__).parent / "demo" / "adapters"
NAMES = ("healthy", "collapsed", "format-mismatch")
SMOL = KNOWN_MODELS["smollm2-135m-instruct"]
RunCli = Callable[[Sequence[str]], tuple[int, str, str]]
HELD_OUT_ROWS = int(os.environ.get("LORAGUARD_TEST_HELD_OUT_ROWS", "204"))
"""All 204 held-out rows; fewer only to debug these tests quickly (the AUC assertion needs them all)."""


def _record(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ADAPTERS / name / "training.json").read_text(encoding="utf-8"))
    return data


def _held_out(row_id: str) -> bool:
    return int(hashlib.sha256(f"loraguard-heldout-v1:{row_id}".encode()).hexdigest()[:8], 16) % 10 == 0


@pytest.mark.parametrize("name", NAMES)
def test_adapter_files_are_small_lora_on_the_real_base(name: str) -> None:
    folder = ADAPTERS / name
    config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    assert config["peft_type"] == "LORA" and config["task_type"] == "CAUSAL_LM"
    assert config["r"] == 8 and config["lora_alpha"] == 16
    assert sorted(config["target_modules"]) == ["down_proj", "o_proj", "q_proj", "v_proj"]
    assert config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    weights = folder / "adapter_model.safetensors"
    assert weights.stat().st_size < 3_000_000
    raw = weights.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    assert len(tensors) == 30 * 4 * 2  # 30 layers x 4 modules x (A, B)


@pytest.mark.parametrize("name", NAMES)
def test_training_record_names_its_base_split_and_run(name: str) -> None:
    record = _record(name)
    assert record["schema"] == "loraguard.reference-adapter/1" and record["name"] == name
    assert record["base"]["gguf_sha256"] == SMOL.member_sha256
    assert record["recipe"]["seed"] == 0 and record["recipe"]["script"] == "scripts/train_reference_adapters.py"
    split = record["split"]
    assert split["held_out_rows"] == len(split["held_out_row_ids"]) == 204
    assert all(_held_out(r) for r in split["held_out_row_ids"])
    training = record["training"]
    assert len(training["loss"]["per_step"]) == training["steps"] == record["recipe"]["steps"]
    for lib in ("torch", "transformers", "peft"):
        assert record["versions"][lib]


def test_held_out_ids_follow_the_rule_on_the_csv(jigsaw_train: Path) -> None:
    with jigsaw_train.open(newline="", encoding="utf-8") as handle:
        ids = [row["row_id"] for row in csv.DictReader(handle)]
    expected = [r for r in ids if _held_out(r)]
    for name in NAMES:
        assert _record(name)["split"]["held_out_row_ids"] == expected


@pytest.mark.parametrize("name", NAMES)
def test_the_static_check_passes_every_reference_adapter(name: str, run_cli: RunCli) -> None:
    """Like the case study: nothing in the files tells the collapsed adapter from the healthy one."""
    code, out, err = run_cli(
        ["check", str(ADAPTERS / name), "--base", "HuggingFaceTB/SmolLM2-135M-Instruct", "--format", "json"]
    )
    assert code == 0, err
    assert json.loads(out)["verdict"] == "pass"


# --- on the real model ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def heldout(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The held-out rows (never trained on) as a Jigsaw CSV."""
    source = shared_dir / "data" / "jigsaw-acrc" / "train.csv"
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = [r for r in reader if _held_out(r["row_id"])][:HELD_OUT_ROWS]
        fields = list(reader.fieldnames or ())
    path = tmp_path_factory.mktemp("heldout") / "heldout.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.slow
def test_score_and_gate_on_held_out_rows(smol_folder: Path, heldout: Path, tmp_path: Path) -> None:
    """`score` (defaults: --dtype auto, the prefix cache) on the held-out rows: the base alone, then the
    healthy and the collapsed adapter in one call, as a user would run them; then the gate. One test,
    so that under xdist the three runs are scored once."""
    from sklearn.metrics import roc_auc_score

    from loraguard.gate import run_gate
    from loraguard.monitor.predictions import read_labels, read_predictions
    from loraguard.scoring import score_file

    base = score_file(heldout, SMOL.name, out=tmp_path / "base.csv").runs[0]
    runs = score_file(heldout, SMOL.name, [ADAPTERS / "healthy", ADAPTERS / "collapsed"], out=tmp_path / "p.csv").runs
    scored = {"base": base, **{r.adapter: r for r in runs}}
    labels = read_labels(heldout)

    # the healthy adapter beats the zero-shot base with the same prompt; score's AUC is sklearn's
    aucs = {}
    for name in ("base", "healthy"):
        run = scored[name]
        assert run.auc is not None
        y = labels.aligned_to(np.asarray(run.result.row_ids)).y
        got = roc_auc_score(y, run.result.probabilities)
        assert abs(got - run.auc.auc) < 1e-9
        aucs[name] = got
    assert aucs["healthy"] > aucs["base"] + 0.05, aucs
    assert not scored["healthy"].degenerate

    # the collapsed adapter: No to every row, every row read, and score's own alert fires
    collapsed = scored["collapsed"]
    p = collapsed.result.probabilities
    assert p.size == HELD_OUT_ROWS and float(p.max()) < 0.003
    assert collapsed.result.parse_failure_share == 0.0
    assert collapsed.degenerate
    assert "degenerate" in {a.rule for a in collapsed.alerts if a.severity.value == "error"}

    # the gate fails the collapsed candidate against the healthy production adapter
    healthy = read_predictions(scored["healthy"].output)
    bad = run_gate(read_predictions(collapsed.output), healthy, labels)
    assert bad.verdict.value == "fail"
    failed = {c.metric for c in bad.checks if str(c.status) == "fail"}
    assert "monitor_errors" in failed, failed  # its predictions are degenerate


@pytest.mark.slow
def test_generate_and_parse_hides_the_collapse(smol_folder: Path, heldout: Path, tmp_path: Path) -> None:
    """The case study's method and v1 prompt (`plain`) on the collapsed adapter: every answer parses, and
    the parsed values are the few round numbers the model writes whatever the adapter, nothing like the
    collapsed adapter's P(Yes) < 0.003 read from the logits. A 100% parse rate says nothing."""
    from loraguard.scoring import score_file
    from loraguard.scoring.data import load_rows, rows_from_records

    rows = rows_from_records([dict(r) for r in load_rows(heldout).rows[:6]])
    run = score_file(
        rows, SMOL.name, [ADAPTERS / "collapsed"], out=tmp_path / "g.csv", method="generate", template="plain"
    ).runs[0]
    values = run.result.probabilities
    assert run.result.parse_failure_share == 0.0 and len(set(values.tolist())) <= 3
    assert float(values.min()) >= 0.5
    logits = score_file(rows, SMOL.name, [ADAPTERS / "collapsed"], out=tmp_path / "l.csv").runs[0]  # chat, logits
    assert float(logits.result.probabilities.max()) < 0.003


@pytest.fixture(scope="module")
def probes(smol_folder: Path) -> dict[str, Any]:
    from loraguard.probe import probe

    return {name: probe(ADAPTERS / name, SMOL.name) for name in NAMES}


@pytest.mark.slow
def test_probe_verdict_and_blame_on_each_reference_adapter(probes: dict[str, Any]) -> None:
    healthy, collapsed = probes["healthy"], probes["collapsed"]
    assert not [f.code for f in healthy.findings if f.code.startswith("LG6") and f.severity.value == "error"]
    assert healthy.verdict.value in ("pass", "warn") and healthy.blame is None
    assert healthy.dtype.startswith("float32")  # --dtype auto probes in float32 on a CPU
    assert healthy.batch is not None and healthy.batch.rows == ()
    assert collapsed.verdict.value == "fail" and collapsed.blame == "adapter"
    assert "LG602" in {f.code for f in collapsed.findings}
    base = collapsed.context.base_stats
    assert base.std is not None and base.std > 0.01  # the bare base spreads: the adapter is to blame
    mismatch = probes["format-mismatch"]  # trained in the `plain` prompt, probed in `chat`: there, and idle
    assert mismatch.verdict.value == "warn" and "LG607" in {f.code for f in mismatch.findings}
    assert mismatch.effect is not None and mismatch.effect.max_prob_diff is not None
    assert mismatch.effect.max_prob_diff < 0.02 < healthy.effect.max_prob_diff


@pytest.mark.slow
def test_check_on_the_gguf_equals_check_on_its_converted_folder(smol_folder: Path) -> None:
    from loraguard import check

    for name in NAMES:
        on_gguf = check(ADAPTERS / name, smol_folder.parent / "model.gguf")
        on_folder = check(ADAPTERS / name, smol_folder)
        assert [(f.code, f.severity) for f in on_gguf.findings] == [(f.code, f.severity) for f in on_folder.findings]
        assert on_gguf.verdict == on_folder.verdict


@pytest.mark.slow
def test_serve_returns_the_probabilities_of_score(smol_folder: Path, tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from loraguard.registry import Registry
    from loraguard.registry.admission import admit
    from loraguard.scoring import score_file
    from loraguard.scoring.builtin_rows import builtin_rows
    from loraguard.scoring.data import rows_from_records
    from loraguard.server.app import create_app
    from loraguard.server.schemas import to_item
    from loraguard.server.service import ServeConfig

    rows = [dict(r) for r in builtin_rows()[:8]]
    registry = Registry(f"sqlite:///{tmp_path / 'registry.db'}")
    try:
        entry = admit(registry, "healthy", ADAPTERS / "healthy", base=SMOL.name)
        registry.promote(entry.ref)
        config = ServeConfig(base=SMOL.name, reload_interval=0.1, max_wait_ms=2.0, registry_url=registry.url)
        with TestClient(create_app(config, registry=registry, seed=0)) as client:
            response = client.post("/v1/classify", json={"items": [to_item(r) for r in rows]})
            assert response.status_code == 200, response.text
            got = np.array([i["probability"] for i in response.json()["items"]])
    finally:
        registry.close()
    want = score_file(rows_from_records(rows), SMOL.name, [ADAPTERS / "healthy"], out=tmp_path / "p.csv")
    expected = want.runs[0].result.probabilities
    assert np.abs(got - expected).max() < 1e-5 and got.std() > 0.005
