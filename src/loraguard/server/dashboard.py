"""The dashboard at `/`: server-rendered HTML, no JavaScript, refreshed by a `<meta http-equiv="refresh">`.

It reuses the report shell (`loraguard.report.html`: the same CSS and the strict Content-Security-
Policy forbidding scripts and network loads; every text is escaped) and draws each adapter's live
distribution from its monitor's histogram with `binned_histogram_svg`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from loraguard.report.html import Raw, esc, page, section, table
from loraguard.report.svg import binned_histogram_svg
from loraguard.server.routing import RoutingTable
from loraguard.server.state import AdapterSnapshot, StateSnapshot

__all__ = ["render_dashboard"]

_EXTRA_CSS = (
    "<style>.mode-live{color:#2e7d32;font-weight:600}.mode-shadow{color:#6a1b9a;font-weight:600}"
    ".mode-idle{color:#757575}.alerts li{margin:2px 0}.sev-error{color:#c62828;font-weight:600}"
    ".sev-warning{color:#b26a00;font-weight:600}.sev-info{color:#1565c0}</style>"
)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _alert_list(items: list[tuple[str, str, str]]) -> Raw:
    """`(severity, title, message)` items as a list; severity picks the colour."""
    if not items:
        return Raw('<p class="note">no alerts</p>')
    lis = "".join(
        f'<li><span class="sev-{esc(sev)}">{esc(sev.upper())} {esc(title)}</span>: {esc(msg)}</li>'
        for sev, title, msg in items
    )
    return Raw(f'<ul class="alerts">{lis}</ul>')


def _adapter_section(ref: str, mode: str, snap: AdapterSnapshot | None) -> Raw:
    if snap is None or snap.summary.n == 0:
        return section(f"{ref} ({mode})", Raw('<p class="note">no predictions yet</p>'))
    s = snap.summary
    chart = binned_histogram_svg(
        {ref: list(s.histogram)},
        title=f"{ref}: predictions ({mode})",
        x_label="P(violation)",
        width=520,
        height=220,
        non_finite={ref: s.n_invalid + s.n_unparsed},
    )
    alerts = [(a.severity.value, a.rule + (f" [{a.segment}]" if a.segment else ""), a.message) for a in snap.alerts]
    return section(f"{ref} ({mode})", Raw(f'<figure class="multiple">{chart}</figure>'), _alert_list(alerts))


def render_dashboard(
    snapshot: StateSnapshot,
    routes: RoutingTable,
    *,
    base: str,
    ready: tuple[bool, str],
    started_at: float,
    refresh_seconds: int = 5,
) -> str:
    """The whole page for one snapshot of the server."""
    configured = routes.shares()
    observed = snapshot.observed_shares()
    rows = []
    for r in routes.routes:
        snap = snapshot.adapters.get(r.ref)
        s = snap.summary if snap else None
        q = s.quantiles if s is not None and s.n else {}
        rows.append(
            [
                r.ref,
                r.status,
                Raw(f'<span class="mode-{esc(r.mode)}">{esc(r.mode)}</span>'),
                f"{r.weight:g}",
                f"{configured.get(r.ref, 0.0):.1%}",
                f"{observed.get(r.ref, 0.0):.1%}",
                snap.requests if snap else 0,
                snap.shadow_predictions if snap else 0,
                _fmt(s.mean if s else None),
                _fmt(q.get("p05")),
                _fmt(q.get("p50")),
                _fmt(q.get("p95")),
                ", ".join(sorted({a.rule for a in snap.alerts})) if snap and snap.alerts else "",
            ]
        )
    adapters = table(
        [
            "adapter",
            "status",
            "mode",
            "weight",
            "share (configured)",
            "share (observed)",
            "requests",
            "shadow predictions",
            "mean",
            "p05",
            "p50",
            "p95",
            "alerts",
        ],
        rows,
        numeric=range(3, 12),
    )
    server_alerts = _alert_list(
        [
            (
                "error",
                f"{a.kind} {a.ref or ''} ({a.reason})".replace("  ", " "),
                f"{a.message} (×{a.count}, last {datetime.fromtimestamp(a.at, UTC):%H:%M:%S} UTC)",
            )
            for a in snapshot.server_alerts
        ]
    )
    ok, why = ready
    state = "READY" if ok else "NOT READY"
    uptime = int(time.time() - started_at)
    parts = [
        section(
            "Adapters",
            adapters,
            note=f"registry revision {routes.revision}; live adapters split the traffic "
            "by weight (sticky by request key); shadow adapters score every request in the background "
            "and never answer",
        ),
        section("Server alerts", server_alerts),
        *[_adapter_section(r.ref, r.mode, snapshot.adapters.get(r.ref)) for r in routes.routes],
    ]
    html = page(
        f"loraguard serve: {base}",
        *parts,
        subtitle=f"{state}: {why} · up {uptime}s · refreshes every {refresh_seconds}s",
        heading=Raw(
            f'<span class="badge v-{"pass" if ok else "fail"}">{esc(state)}</span> loraguard serve · {esc(base)}'
        ),
    )
    head = f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">{_EXTRA_CSS}'
    return html.replace('<meta charset="utf-8">', '<meta charset="utf-8">' + head, 1)
