"""The registry with the real check and probe on the demo's tiny base and real PEFT adapters (torch, slow)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from loraguard.errors import AdapterRejectedError
from loraguard.registry.admission import admit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory, probe_models: Any) -> dict[str, Path]:
    pytest.importorskip("sqlalchemy")
    from loraguard.demo.pipeline import write_rows_csv

    built = probe_models
    root = tmp_path_factory.mktemp("registry-real")
    return {
        "base": built.base,
        "healthy": built.healthy,
        "degenerate": built.degenerate,
        "noop": built.noop,
        "rows": write_rows_csv(root / "rows.csv"),
    }


def test_real_check_accepts_healthy_rejects_noop_and_probe_rejects_degenerate(fx: dict[str, Path], url: str) -> None:
    from loraguard.registry import Registry

    with Registry(url) as reg:
        healthy = admit(reg, "healthy", fx["healthy"], base=str(fx["base"]), probe_data=fx["rows"])
        assert healthy.check_report["schema"] == "loraguard.check/1" and healthy.check_report["verdict"] != "fail"
        assert healthy.probe_report is not None and healthy.probe_report["verdict"] != "fail"
        assert set(healthy.files) == {"adapter_config.json", "adapter_model.safetensors"}
        before = (reg.revision(), reg.list(), reg.events())
        with pytest.raises(AdapterRejectedError, match=r"check found .*LG401 zero-adapter") as info:
            admit(reg, "noop", fx["noop"], base=str(fx["base"]))
        assert info.value.report.verdict.value == "fail"
        with pytest.raises(AdapterRejectedError, match=r"probe found .*degenerate-output") as info:
            admit(reg, "degenerate", fx["degenerate"], base=str(fx["base"]), probe_data=fx["rows"])
        assert not info.value.report.check.errors  # the static check passed: only running it showed the problem
        assert (reg.revision(), reg.list(), reg.events()) == before
        forced = admit(reg, "noop", fx["noop"], base=str(fx["base"]), force=True, reason="baseline for A/B")
        assert forced.forced and forced.check_report["findings"][0]["code"] == "LG401"


def test_cli_with_the_real_check(
    fx: dict[str, Path], url: str, run_cli: Callable[[Sequence[str]], tuple[int, str, str]]
) -> None:
    def cli(*args: Any) -> tuple[int, str, str]:
        return run_cli(["registry", *map(str, args), "--registry", url])

    code, out, _ = cli("add", "noop", fx["noop"], "--base", fx["base"])
    assert code == 1 and "REJECTED (FAIL)" in out and "LG401" in out and "--force --reason" in out
    code, out, err = cli("add", "healthy", fx["healthy"], "--base", fx["base"], "--json")
    assert code == 0, err
    assert json.loads(out)["entry"]["ref"] == "healthy@1"
    assert cli("promote", "healthy")[0] == 0 and cli("verify")[0] == 0
    code, out, _ = cli("list", "--base", fx["base"], "--json")
    assert [(e["ref"], e["status"]) for e in json.loads(out)["entries"]] == [("healthy@1", "production")]
