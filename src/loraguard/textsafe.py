"""Untrusted text made safe to show: names and texts from adapters, configs, CSVs and file systems.

A folder name can hold bytes that are not UTF-8 (Python decodes them to lone surrogates with
`surrogateescape`), terminal control sequences (`ESC [ 2 J` clears the screen), C1 controls, or
bidirectional overrides that make a terminal show text in another order than it is. `printable()`
turns each such character into a visible escape: a byte that was not UTF-8 becomes `\\xff`, a control
character `\\x1b`, an invisible or bidi control `\\u202e`. Every output applies it the same way
(terminal text, JSON, CSV, HTML), so nothing from an input can move the cursor, recolour the terminal,
hide text or make an output unencodable, and one name reads the same everywhere.

    printable("ad\\udcffapter\\x1b[31m")  ->  'ad\\\\xffapter\\\\x1b[31m'
    json_safe({"name": "ad\\udcff"})      ->  {'name': 'ad\\\\xff'}
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["json_safe", "printable"]

# C0 controls but tab and newline, DEL and C1 controls, zero-width and bidi controls, line/paragraph
# separators, the BOM, and lone surrogates (undecodable bytes of a file name, or "\ud800" from JSON).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")
_UNSAFE_LINES = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the undecodable byte itself
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str, *, newlines: bool = True) -> str:
    """`text` with every control, invisible, bidi and undecodable character as a visible escape.

    Tabs and (with `newlines`, the default) newlines are kept; pass `newlines=False` for a single
    line such as a name in a table cell, so a name cannot forge extra output lines.
    """
    pattern = _UNSAFE if newlines else _UNSAFE_LINES
    return pattern.sub(_escape, text) if pattern.search(text) else text


def json_safe(value: Any) -> Any:
    """`value` (a JSON-ready document) with `printable` applied to every string, keys included, and NaN
    or infinite floats as None (JSON has neither).

    The result encodes as strict UTF-8 JSON that every parser accepts (no lone surrogates, no `NaN`) and
    holds no raw control characters once decoded, whatever names, texts and numbers the inputs carried.
    """
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {(printable(k) if isinstance(k, str) else k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
