"""`loraguard matrix`: check many adapters against many bases in parallel, one CSV row per pair.

from loraguard.matrix import run_matrix, write_csv
result = run_matrix(["./adapters"], ["Qwen/Qwen2.5-1.5B-Instruct", "./bases/llama"], jobs=2)
result.counts()            # {"pass": 10, "warn": 3, "fail": 12, "error": 0}
write_csv(result, "matrix.csv")
"""

from __future__ import annotations

from loraguard.matrix.discover import discover_adapters, hub_cache_dir
from loraguard.matrix.output import COLUMNS, csv_text, write_csv
from loraguard.matrix.run import Cell, MatrixResult, MatrixRow, check_cell, engines_available, run_matrix

__all__ = [
    "COLUMNS",
    "Cell",
    "MatrixResult",
    "MatrixRow",
    "check_cell",
    "csv_text",
    "discover_adapters",
    "engines_available",
    "hub_cache_dir",
    "run_matrix",
    "write_csv",
]
