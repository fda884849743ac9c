"""How results show themselves in a plain REPL, in IPython and in Jupyter, without a room looking up.

Results live in the rooms that make them (`checks/`, `probe/`, `gate/`, `scoring/`, `guard/`); their
text and HTML forms live in `report/`, a room above them, so a result cannot import its formatter,
not even lazily inside a method. Instead:

- `@renderable` (above `@dataclass`) gives a result class `__repr__` and `__str__` (its text report,
  as `loraguard <command>` prints it), `_repr_pretty_` (IPython) and `_repr_html_` (Jupyter: an HTML
  fragment with inline SVG and scoped styles, no script). Each looks the renderer up here, by class.
- A room that may import both the result and `report/` registers the renderers with `register`:
  `loraguard.report.notebook` for check, probe, gate and score reports; `loraguard.guard.render`
  for the guarded load's report.
- When a result is shown and nothing is registered for its class yet, the modules listed in
  `RENDERER_MODULES` are imported, once. This module names none: the package root
  (`loraguard/__init__.py`, the one place that wires rooms together) puts
  `loraguard.report.notebook` there, so the dependency runs from the top down at run time while
  every import statement in the package still looks down.

Without a renderer (or if rendering fails) `repr` falls back to the dataclass's own and
`_repr_html_` returns None, so a front end shows the text instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["RENDERER_MODULES", "Renderer", "html_of", "register", "renderable", "text_of"]

T = TypeVar("T", bound=type)


@dataclass(frozen=True)
class Renderer:
    """The text and HTML forms of one result class."""

    text: Callable[[Any], str]
    """The report as `loraguard <command>` prints it (no colour)."""
    html: Callable[[Any], str] | None = None
    """An HTML fragment for a notebook cell (no `<html>`, no script, styles scoped to the fragment)."""


RENDERER_MODULES: list[str] = []
"""Modules that register renderers when imported (set by the package root)."""
_RENDERERS: dict[type, Renderer] = {}
_imported: set[str] = set()


def register(cls: type, *, text: Callable[[Any], str], html: Callable[[Any], str] | None = None) -> None:
    """Register the renderers of result class `cls` (replacing earlier ones)."""
    _RENDERERS[cls] = Renderer(text, html)


def renderer_of(obj: object) -> Renderer | None:
    """The renderer registered for `obj`'s class (or a base class), importing `RENDERER_MODULES` if needed."""
    found = _lookup(type(obj))
    if found is None:
        for name in [n for n in RENDERER_MODULES if n not in _imported]:
            _imported.add(name)
            importlib.import_module(name)
        found = _lookup(type(obj))
    return found


def _lookup(cls: type) -> Renderer | None:
    return next((_RENDERERS[c] for c in cls.__mro__ if c in _RENDERERS), None)


def text_of(obj: object) -> str | None:
    """`obj`'s text report, or None without a renderer."""
    r = renderer_of(obj)
    return r.text(obj) if r is not None else None


def html_of(obj: object) -> str | None:
    """`obj`'s HTML fragment, or None without an HTML renderer."""
    r = renderer_of(obj)
    return r.html(obj) if r is not None and r.html is not None else None


def renderable(cls: T) -> T:
    """Give a result class `__repr__`, `__str__`, `_repr_pretty_` and `_repr_html_` (see the module docstring).

    Put it above `@dataclass`, whose generated `__repr__` it keeps as the fallback.
    """
    fallback: Callable[[Any], str] = cls.__repr__  # type: ignore[assignment]

    def text(self: Any) -> str:
        try:
            shown = text_of(self)
        except Exception:  # a repr must never raise: a debugger or a log line calls it
            shown = None
        return shown.rstrip("\n") if shown is not None else fallback(self)

    def _repr_pretty_(self: Any, printer: Any, cycle: bool) -> None:
        printer.text(f"{type(self).__name__}(...)" if cycle else text(self))

    def _repr_html_(self: Any) -> str | None:
        return html_of(self)

    cls.__repr__ = text  # type: ignore[method-assign,assignment]
    cls.__str__ = text  # type: ignore[method-assign,assignment]
    cls._repr_pretty_ = _repr_pretty_  # type: ignore[attr-defined]
    cls._repr_html_ = _repr_html_  # type: ignore[attr-defined]
    return cls
