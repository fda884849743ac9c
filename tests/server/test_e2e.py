"""One real `loraguard serve` (uvicorn, a subprocess on an ephemeral loopback port): HTTP end to end,
the CLI shell, and the dashboard rendered by headless Chromium with its histograms on screen."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_helpers import items_of, metric

from loraguard.registry.admission import admit

pytestmark = pytest.mark.slow
REPORT_TESTS = Path(__file__).resolve().parents[1] / "report"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(fx: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from loraguard.registry import Registry

    root = tmp_path_factory.mktemp("e2e")
    url = f"sqlite:///{root / 'registry.db'}"
    with Registry(url) as reg:
        reg.promote(admit(reg, "healthy", fx["healthy"], base=str(fx["base"])).ref)
        admit(reg, "degen", fx["degenerate"], base=str(fx["base"]))  # passes the static check: a shadow candidate
    port = _free_port()
    log = (root / "server.log").open("w")
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "LORAGUARD_API_KEY": ""}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loraguard",
            "serve",
            "--registry",
            url,
            "--base",
            str(fx["base"]),
            "--port",
            str(port),
            "--threads",
            "1",
            "--reload-interval",
            "0.2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, (root / "server.log").read_text()[-3000:]
            try:
                if httpx.get(base_url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("the server did not become ready in 90 s")
        yield {"url": base_url, "proc": proc, "log": root / "server.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_classify_over_real_http(server: dict[str, Any], rows: list[dict[str, str]]) -> None:
    import httpx

    with httpx.Client(base_url=server["url"], timeout=30) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        one = client.post("/v1/classify", json={**items_of(rows)[0], "key": "user-1"}).json()
        assert set(one) == {"probability", "adapter", "version", "latency_ms"} and one["adapter"] == "healthy"
        batch = client.post("/v1/classify", json={"items": items_of(rows)}).json()["items"]
        assert len(batch) == len(rows) and len({round(b["probability"], 6) for b in batch}) > 5
        bad = client.post("/v1/classify", content=b"{", headers={"content-type": "application/json"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "malformed_json"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the shadow candidate scores the same rows in the background
            text = client.get("/metrics").text
            if (metric(text, "loraguard_serve_shadow_predictions_total", adapter="degen@1") or 0) >= len(rows):
                break
            time.sleep(0.1)
        assert metric(text, "loraguard_serve_requests_total", adapter="healthy@1", status="ok") == 1 + len(rows)
        assert metric(text, "loraguard_alert", adapter="degen@1", rule="degenerate", severity="error") == 1.0
    assert "Traceback" not in server["log"].read_text()


@pytest.mark.browser
def test_dashboard_renders_histograms_in_chromium(
    server: dict[str, Any], rows: list[dict[str, str]], tmp_path: Path
) -> None:
    import httpx

    sys.path.insert(0, str(REPORT_TESTS))
    try:
        from png_check import colour_stats, read_png
    finally:
        sys.path.remove(str(REPORT_TESTS))
    chromium = "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else shutil.which("chromium")
    if chromium is None:
        pytest.skip("headless Chromium is absent: install Debian's `chromium` package to render the dashboard")
    httpx.post(server["url"] + "/v1/classify", json={"items": items_of(rows)}, timeout=30)
    shot = tmp_path / "dashboard.png"
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        f"--screenshot={shot}",
        "--dump-dom",
        "--window-size=1200,1600",
        server["url"] + "/",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]  # no script, no CSP violation
    dom = proc.stdout
    assert dom.count("<svg") >= 2 and "healthy@1 (live)" in dom and "degen@1 (shadow)" in dom
    assert "ERROR degenerate" in dom and "READY" in dom
    pixels = read_png(shot)
    colours, ink = colour_stats(pixels)
    assert colours > 30 and ink > 0.05, f"blank-looking screenshot: {colours} colours, {ink:.1%} ink"
    bar = re.search(r'class="bar" data-series="0"[^>]*fill="#([0-9a-f]{6})"', dom)
    assert bar is not None
    rgb = tuple(int(bar.group(1)[i : i + 2], 16) for i in (0, 2, 4))
    # the bars are drawn at 85% opacity over the plot's #fafafa background
    blended = tuple(round(0.85 * c + 0.15 * 0xFA) for c in rgb)
    flat = pixels[..., :3].reshape(-1, 3).astype(int)
    close = (abs(flat - blended) <= 3).all(axis=1).sum()
    assert close > 1500, f"only {close} histogram-bar pixels on screen"
