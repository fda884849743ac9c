"""`loraguard matrix`: check many adapters against many bases in parallel, one CSV row per pair.

from loraguard.matrix import run_matrix, write_csv
result = run_matrix(["./adapters"], ["Qwen/Qwen2.5-1.5B-Instruct", "./bases/llama"], jobs=2)
result.counts()            # {"pass": 10, "warn": 3, "fail": 12, "error": 0}
write_csv(result, "matrix.csv")

One pipeline (`pipeline.py`: plan the cells, execute them in chunks, finish the result) with an executor
seam (`executor.py`): `serial`, `thread` and `process` here (`local.py`), Ray tasks in
`loraguard.distributed.RayMatrixExecutor`. One cell is one `check` (`cell.py`).
"""

from __future__ import annotations

from loraguard.matrix.cell import Cell, CellFn, MatrixRow, check_cell
from loraguard.matrix.discover import discover_adapters, hub_cache_dir
from loraguard.matrix.executor import MatrixExecutor, Workers
from loraguard.matrix.local import ProcessExecutor, SerialExecutor, ThreadExecutor
from loraguard.matrix.output import COLUMNS, csv_text, write_csv
from loraguard.matrix.pipeline import MatrixResult, run_matrix

__all__ = [
    "COLUMNS",
    "Cell",
    "CellFn",
    "MatrixExecutor",
    "MatrixResult",
    "MatrixRow",
    "ProcessExecutor",
    "SerialExecutor",
    "ThreadExecutor",
    "Workers",
    "check_cell",
    "csv_text",
    "discover_adapters",
    "hub_cache_dir",
    "run_matrix",
    "write_csv",
]
