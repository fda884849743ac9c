"""Fixtures of the hostile-input suite: a tiny config-only base and a healthy adapter to damage.

`hostile_inputs` (builders and the `bounded` time/memory assertion) is importable because pytest puts
this folder on sys.path for the test modules here (no __init__.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def base(tmp_path: Path) -> Path:
    from hostile_inputs import tiny_base

    return tiny_base(tmp_path)


@pytest.fixture
def good(tmp_path: Path) -> Path:
    from hostile_inputs import good_adapter

    return good_adapter(tmp_path)
