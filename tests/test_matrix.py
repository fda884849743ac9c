"""`loraguard matrix` / `run_matrix`: discovery, one row per adapter × base, errors as rows, CSV, CLI."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "report"))
from report_helpers import make_adapter, make_base

import loraguard.checks.checker
from loraguard.cli.app import main
from loraguard.errors import AdapterNotFoundError, OutputExistsError
from loraguard.matrix import (
    COLUMNS,
    MatrixExecutor,
    MatrixResult,
    MatrixRow,
    Workers,
    csv_text,
    discover_adapters,
    run_matrix,
    write_csv,
)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """adapters/: a healthy adapter with a checkpoint inside, a NaN one, a wider one, a folder of two
    loose .safetensors sharing one config, a hidden folder; bases/: the tiny base and a wider twin."""
    root = tmp_path_factory.mktemp("matrix")
    ads = root / "adapters"
    out = {
        "healthy": make_adapter(ads / "team-a" / "healthy"),
        "checkpoint": make_adapter(ads / "team-a" / "healthy" / "checkpoint-10", seed=1),
        "nan": make_adapter(ads / "team-b" / "nan", nan=[1]),
        "wide": make_adapter(ads / "team-b" / "wide", hidden=96, base="test/wide-llama"),
    }
    loose = make_adapter(ads / "loose", weights_name="v1.safetensors")
    shutil.copy(loose / "v1.safetensors", loose / "v2.safetensors")
    make_adapter(ads / ".hidden" / "skipped")
    (ads / "notes").mkdir()
    (ads / "notes" / "model.safetensors").write_bytes(b"not an adapter: no config beside it")
    out |= {
        "loose1": loose / "v1.safetensors",
        "loose2": loose / "v2.safetensors",
        "root": root,
        "adapters": ads,
        "base": make_base(root / "bases" / "tiny"),
        "wide_base": make_base(root / "bases" / "wide", hidden_size=96, _name_or_path="test/wide-llama"),
    }
    return out


def test_discovery_finds_folders_checkpoints_and_loose_files(tree: dict[str, Path]) -> None:
    found = discover_adapters([tree["adapters"]])
    expected = {tree[k] for k in ("healthy", "checkpoint", "nan", "wide", "loose1", "loose2")}
    assert {Path(p) for p in found} == expected and len(found) == 6
    assert discover_adapters([tree["adapters"], tree["healthy"]]) == found  # each adapter once
    assert discover_adapters([tree["loose1"]]) == (str(tree["loose1"]),)  # a file named directly
    with pytest.raises(AdapterNotFoundError):
        discover_adapters([tree["root"] / "nowhere"])


def test_discovery_of_the_hub_cache(tmp_path: Path, tree: dict[str, Path], monkeypatch) -> None:
    snap = tmp_path / "hub" / "models--org--lora" / "snapshots" / "abc123"
    shutil.copytree(tree["nan"], snap)
    (tmp_path / "hub" / "models--org--base" / "snapshots" / "def456").mkdir(parents=True)  # a model, not an adapter
    assert discover_adapters([], hub_cache=tmp_path / "hub") == (str(snap),)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert discover_adapters([], hub_cache=True) == (str(snap),)


def test_one_row_per_adapter_and_base_in_order(tree: dict[str, Path]) -> None:
    bases = [str(tree["base"]), str(tree["wide_base"])]
    result = run_matrix([tree["adapters"]], bases, jobs=1)
    assert len(result.rows) == 12 and result.executor == "serial"
    assert [(r.adapter, r.base) for r in result.rows] == [(a, b) for a in result.adapters for b in bases]
    by = {(Path(r.adapter).name, r.base): r for r in result.rows}
    healthy = by[("healthy", bases[0])]
    assert healthy.verdict == "pass" and healthy.ranks == (4,) and healthy.targets == ("q_proj", "v_proj")
    assert healthy.size_bytes > 0 and healthy.ms > 0 and healthy.errors == 0
    nan = by[("nan", bases[0])]
    assert nan.verdict == "fail" and nan.categories[0] == "non-finite-weights"
    wide = by[("wide", bases[0])]
    assert wide.verdict == "fail" and "shape-mismatch" in wide.categories
    assert by[("wide", bases[1])].verdict == "pass"  # it fits its own base
    assert result.counts()["error"] == 0 and sum(result.counts().values()) == 12
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.jobs = 3  # type: ignore[misc]


def test_header_only_skips_value_scans(tree: dict[str, Path]) -> None:
    full = run_matrix([tree["nan"]], [str(tree["base"])])
    fast = run_matrix([tree["nan"]], [str(tree["base"])], header_only=True)
    assert full.rows[0].verdict == "fail" and fast.rows[0].verdict == "pass" and fast.header_only


def test_claimed_base_when_no_base_is_given(tree: dict[str, Path]) -> None:
    row = run_matrix([tree["healthy"]]).rows[0]
    assert row.base.startswith("(claimed)")


@pytest.mark.parametrize("executor", ["serial", "thread", "process"])
def test_a_cell_that_raises_becomes_an_error_row(tree: dict[str, Path], monkeypatch, executor: str) -> None:
    real = loraguard.checks.checker.check

    def flaky(adapter, base=None, **kw):
        if "nan" in str(adapter):
            raise RuntimeError("boom\nsecond line")
        return real(adapter, base, **kw)

    monkeypatch.setattr("loraguard.checks.checker.check", flaky)
    monkeypatch.setenv("LORAGUARD_MP_START", "fork")  # the patched function must reach the workers
    paths = [tree["healthy"], tree["nan"], tree["wide"]] * 3
    result = run_matrix(paths, [str(tree["base"])], jobs=2, executor=executor, discover=False)
    assert [r.verdict for r in result.rows] == ["pass", "error", "fail"] * 3
    bad = result.rows[1]
    assert bad.error == "RuntimeError: boom second line" and bad.categories == ()


def test_a_worker_that_dies_fails_only_its_cell(tree: dict[str, Path], monkeypatch) -> None:
    real = loraguard.checks.checker.check
    parent = os.getpid()

    def killer(adapter, base=None, **kw):
        if "nan" in str(adapter) and os.getpid() != parent:
            os._exit(3)  # a segfault-like death of the worker process
        return real(adapter, base, **kw)

    monkeypatch.setattr("loraguard.checks.checker.check", killer)
    monkeypatch.setenv("LORAGUARD_MP_START", "fork")
    paths = [tree["healthy"], tree["nan"], tree["wide"], tree["healthy"]]
    result = run_matrix(paths, [str(tree["base"])], jobs=2, executor="process", discover=False)
    assert [r.verdict for r in result.rows] == ["pass", "error", "fail", "pass"]
    assert result.rows[1].error.startswith("worker process failed")


class FlakyWorkers(MatrixExecutor):
    """Runs chunks here, last first; a chunk holding `poison` dies, and alone only the poison cell does."""

    name = "flaky"

    def __init__(self, poison: str) -> None:
        self.poison = poison
        self.calls: list[list[int]] = []

    def start(self):
        return contextlib.nullcontext(Workers(2, {"where": "here"}))

    def run_chunks(self, fn, chunks):
        self.calls.append([len(c) for c in chunks])
        for index, chunk in reversed(list(enumerate(chunks))):
            if any(c.adapter == self.poison for c in chunk):
                yield index, RuntimeError("worker died\nTraceback (most recent call last): ...")
            else:
                yield index, [fn(c) for c in chunk]


def test_the_cells_of_a_dead_chunk_are_rerun_alone_and_rows_keep_their_order() -> None:
    paths = [f"adapter-{i}" for i in range(20)]
    workers = FlakyWorkers("adapter-7")
    result = run_matrix(
        paths,
        ["b1"],
        discover=False,
        executor=workers,
        cell_fn=lambda cell: MatrixRow(cell.adapter, str(cell.base), "pass"),
    )
    assert [r.adapter for r in result.rows] == paths
    assert [r.verdict for r in result.rows] == ["pass"] * 7 + ["error"] + ["pass"] * 12
    assert result.rows[7].error == "worker process failed: RuntimeError: worker died"
    assert workers.calls == [[3, 3, 3, 3, 3, 3, 2], [1, 1, 1]]  # four chunks per worker, then one cell per task
    assert (result.executor, result.jobs, dict(result.meta)) == ("flaky", 2, {"where": "here"})


def test_engine_columns(tree: dict[str, Path]) -> None:
    result = run_matrix([tree["healthy"]], [str(tree["base"])], engines=["vllm", "vllm", "sglang"])
    assert result.engines == ("vllm", "sglang")
    header = next(csv.reader(io.StringIO(csv_text(result))))
    assert header == [*COLUMNS, "engine:vllm", "engine:sglang"]
    assert dict(result.rows[0].engines)["vllm"] in {"ok", "refused", "silent-noop"}


def test_csv_is_written_atomically_and_never_clobbered(tree: dict[str, Path], tmp_path: Path) -> None:
    result = run_matrix([tree["healthy"], tree["nan"]], [str(tree["base"])], discover=False)
    out = write_csv(result, tmp_path / "m.csv")
    rows = list(csv.DictReader(out.open()))
    assert [r["verdict"] for r in rows] == ["pass", "fail"] and list(rows[0]) == list(COLUMNS)
    assert rows[1]["categories"].split(";")[0] == "non-finite-weights" and rows[0]["targets"] == "q_proj;v_proj"
    with pytest.raises(OutputExistsError):
        write_csv(result, out)
    write_csv(dataclasses.replace(result, rows=result.rows[:1]), out, overwrite=True)
    assert len(list(csv.DictReader(out.open()))) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv"]  # no temporary file left


def test_cli_matrix_writes_csv_and_html(tree: dict[str, Path], tmp_path: Path, capsys) -> None:
    out, html = tmp_path / "m.csv", tmp_path / "m.html"
    args = [
        "matrix",
        str(tree["adapters"]),
        "--base",
        str(tree["base"]),
        "--base",
        str(tree["wide_base"]),
        "--out",
        str(out),
        "--html",
        str(html),
        "--jobs",
        "2",
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "6 adapter(s) × 2 base(s) = 12 checks" in text and f"CSV in {out}" in text
    assert len(list(csv.DictReader(out.open()))) == 12
    page = html.read_text()
    assert "Verdicts per base" in page and page.count("<svg") >= 3
    assert main(args) == 2  # the CSV exists: refuse
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--header-only", "--executor", "thread"]) == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["matrix", "NOWHERE", "--out", "OUT"], "no such file or folder"),
        (["matrix", "EMPTY", "--out", "OUT"], "no adapter found"),
        (["matrix", "ADAPTERS", "--out", "OUT", "--base", "NOBASE"], "has no config.json"),
        (["matrix", "ADAPTERS", "--out", "OUT", "--engine", "nope"], "nope"),
        (["matrix", "ADAPTERS"], "--out is required"),
        (["matrix", "--out", "OUT"], "no adapters to check"),
        (["matrix", "ADAPTERS", "--out", "OUT", "--jobs", "0"], "--jobs"),
    ],
)
def test_cli_bad_input_exits_2(tree: dict[str, Path], tmp_path: Path, capsys, args: list[str], message: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "nobase").mkdir()
    subst = {
        "NOWHERE": str(tmp_path / "nowhere"),
        "NOBASE": str(tmp_path / "nobase"),
        "EMPTY": str(tmp_path / "empty"),
        "OUT": str(tmp_path / "o.csv"),
        "ADAPTERS": str(tree["adapters"]),
    }
    assert main([subst.get(a, a) for a in args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_matrix_does_not_import_torch(tree: dict[str, Path], tmp_path: Path) -> None:
    import subprocess

    code = (
        "import sys; from loraguard.cli.app import main;"
        " rc = main(['matrix', sys.argv[1], '--base', sys.argv[2], '--out', sys.argv[3], '--html', sys.argv[4]]);"
        " print('HEAVY', [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]); sys.exit(rc)"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(tree["adapters"]),
            str(tree["base"]),
            str(tmp_path / "m.csv"),
            str(tmp_path / "m.html"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout


def test_matrix_result_speed_fields(tree: dict[str, Path]) -> None:
    result = run_matrix([tree["healthy"]], [str(tree["base"])])
    assert isinstance(result, MatrixResult) and result.checks_per_second > 0 and result.elapsed_s > 0


@pytest.mark.slow
def test_fault_cases_match_check(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every fault case of the factory: the matrix row agrees with `check` run directly."""
    from fault_cases import build_all

    built = build_all(tmp_path_factory.mktemp("matrix-faults"))
    cells = list(built.values())
    result = run_matrix([c.adapter for c in cells], [], jobs=2, executor="process", discover=False)
    assert result.counts()["error"] == 0
    for item in cells:
        rows = run_matrix([item.adapter], [str(item.base)], discover=False).rows
        direct = loraguard.check(item.adapter, item.base)
        assert rows[0].verdict == direct.verdict.value, item.case.name
        assert set(rows[0].categories) == direct.categories(), item.case.name
