"""The shared shell of loraguard's self-contained HTML reports: page, CSS, escaping, tables, atomic write.

Pages hold no JavaScript and load nothing: charts are inline SVG (`loraguard.report.svg`), styles are
inline, and a Content-Security-Policy forbids scripts and every network fetch, so a report opened
from a CI artifact or an e-mail can neither run code nor phone home, even if a module or rule name
carried markup (every text goes through `html.escape`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from loraguard.fileio import atomic_write
from loraguard.textsafe import printable

__all__ = ["Raw", "badge", "esc", "facts", "fragment", "page", "scoped_css", "section", "table", "write_html"]

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1b1b; margin: 0;
       background: #fff; }
header { padding: 14px 24px 10px; border-bottom: 1px solid #ddd; background: #f7f7f9; }
header h1 { font-size: 20px; margin: 0 0 4px; }
header .sub { color: #555; font-size: 13px; word-break: break-all; }
main { padding: 6px 24px 24px; max-width: 1240px; }
section { margin: 18px 0 8px; }
h2 { font-size: 16px; margin: 0 0 8px; border-bottom: 1px solid #eee; padding-bottom: 3px; }
.note { color: #555; font-size: 12.5px; margin: 4px 0; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 10px; font-weight: 700; color: #fff;
         font-size: 13px; letter-spacing: .03em; }
.v-pass { background: #2e7d32; } .v-warn { background: #b26a00; } .v-fail { background: #c62828; }
.v-error { background: #6a1b9a; } .v-skipped, .v-none { background: #757575; }
table.data { border-collapse: collapse; font-size: 13px; margin: 4px 0; }
table.data th, table.data td { border: 1px solid #e2e2e2; padding: 3px 7px; text-align: left; vertical-align: top; }
table.data th { background: #f3f3f5; }
table.data td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.sev-error { color: #c62828; font-weight: 600; } td.sev-warning { color: #b26a00; font-weight: 600; }
td.sev-info { color: #1565c0; }
td.c-pass { background: #e8f5e9; } td.c-warn { background: #fff3e0; } td.c-fail { background: #ffebee; }
td.c-error { background: #f3e5f5; }
.fix { color: #555; font-size: 12px; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; margin: 4px 0; font-size: 13px; }
dl.facts dt { color: #555; } dl.facts dd { margin: 0; word-break: break-all; }
.multiples { display: flex; flex-wrap: wrap; gap: 8px; }
figure.multiple { margin: 0; } figure.multiple figcaption { display: none; }
svg.chart { display: block; max-width: 100%; height: auto; }
footer { color: #777; font-size: 12px; padding: 8px 24px 20px; }
"""


class Raw(str):
    """Markup that is already safe (built by these helpers); everything else is escaped."""


def esc(value: object) -> str:
    """`value` as HTML text (quotes escaped too, so it is safe in attributes; control characters and
    undecodable bytes from inputs shown as `textsafe.printable` escapes)."""
    return value if isinstance(value, Raw) else escape(printable("" if value is None else str(value)), quote=True)


def badge(verdict: str) -> Raw:
    """A coloured verdict pill: pass, warn, fail, error, skipped."""
    v = str(verdict).lower()
    known = v if v in {"pass", "warn", "fail", "error", "skipped"} else "none"
    return Raw(f'<span class="badge v-{known}">{esc(v.upper())}</span>')


def facts(items: Iterable[tuple[str, object]]) -> Raw:
    """A two-column definition list of label → value (None values are left out)."""
    rows = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items if v is not None)
    return Raw(f'<dl class="facts">{rows}</dl>')


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    numeric: Iterable[int] = (),
    cell_class: Iterable[tuple[int, str]] | None = None,
) -> Raw:
    """An HTML table; cells are escaped unless `Raw`. `numeric` columns are right-aligned.

    `cell_class` is an optional iterable of `(column, css_class)` per row, aligned with `rows`.
    """
    nums = set(numeric)
    classes = list(cell_class) if cell_class is not None else None
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for r, row in enumerate(rows):
        special = classes[r] if classes is not None and r < len(classes) else None
        cells = []
        for c, value in enumerate(row):
            cls = ["num"] if c in nums else []
            if special is not None and special[0] == c:
                cls.append(special[1])
            attr = f' class="{" ".join(cls)}"' if cls else ""
            cells.append(f"<td{attr}>{esc(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return Raw(f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')


def section(title: str, *parts: str, note: str = "") -> Raw:
    """A titled section; `parts` must be `Raw` markup or are escaped as text."""
    body = "".join(esc(p) for p in parts)
    return Raw(
        f"<section><h2>{esc(title)}</h2>" + (f'<p class="note">{esc(note)}</p>' if note else "") + body + "</section>"
    )


def page(title: str, *sections: str, subtitle: str = "", heading: str | None = None) -> str:
    """A complete HTML document with the shared CSS and a CSP forbidding scripts and network loads.

    `heading` is raw markup for the `<h1>` (e.g. a badge and a name); by default the escaped title.
    """
    from loraguard.version import __version__

    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    h1 = heading if heading is not None else esc(title)
    body = "".join(esc(s) for s in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="loraguard {esc(__version__)}">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{h1}</h1>" + (f'<div class="sub">{esc(subtitle)}</div>' if subtitle else "") + "</header>"
        f"<main>{body}</main><footer>loraguard {esc(__version__)} · {esc(stamp)} · self-contained report: no "
        "scripts, no network</footer></body></html>\n"
    )


FRAGMENT_CLASS = "loraguard-report"
"""The class of a notebook fragment's outer `<div>`: every style of the fragment is scoped to it."""


def scoped_css(css: str, scope: str) -> str:
    """`css` with every rule limited to the elements below `scope` (`body`/`:root` rules apply to it).

    For the simple, flat style sheet of these reports (no @-rules, no nested blocks).
    """
    out = []
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        parts = (part.strip() for part in selectors.split(","))
        scoped = [scope if sel in {"body", ":root"} else f"{scope} {sel}" for sel in parts]
        out.append(f"{', '.join(scoped)} {{{body}}}")
    return "\n".join(out)


def fragment(*sections: str, heading: str, subtitle: str = "") -> str:
    """A report as an HTML fragment for a notebook cell (Jupyter's `_repr_html_`).

    The same sections and CSS as `page`, inside one `<div class="loraguard-report">` whose styles
    apply to nothing outside it; no `<html>`, no script, nothing loaded. `heading` is raw markup.
    """
    scope = f"div.{FRAGMENT_CLASS}"
    body = "".join(esc(s) for s in sections)
    return (
        f'<div class="{FRAGMENT_CLASS}"><style>{scoped_css(CSS, scope)}</style>'
        f"<header><h1>{heading}</h1>" + (f'<div class="sub">{esc(subtitle)}</div>' if subtitle else "") + "</header>"
        f"<main>{body}</main></div>"
    )


def write_html(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` to `path` atomically (a temporary file in the same folder, then `os.replace`).

    Raises `InputError` when the folder does not exist (the CLI exits 2 with the message).
    """
    from loraguard.errors import InputError

    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder to write {target.name} in", path=target)
    return atomic_write(target, text, overwrite=True)
