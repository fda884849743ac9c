"""The package's shape: no import circle inside src/loraguard, and rooms only look down.

The imports are read from the source with `ast` (nothing is imported), including imports inside
functions and under `TYPE_CHECKING`: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "loraguard"

# Rooms from the bottom up (docs/architecture.md draws the same picture). A room may import rooms of
# a lower or the same level, never a higher one. Root-level modules count as rooms of their own.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"errors", "findings", "fileio", "codes", "textsafe", "display", "version"}),
    frozenset({"adapter", "basemodel"}),
    frozenset({"engines", "monitor", "models"}),
    frozenset({"checks", "scoring"}),
    frozenset({"probe", "gate", "ensemble", "matrix", "registry"}),
    frozenset({"report"}),
    frozenset({"distributed", "server", "demo", "guard"}),
    frozenset({"cli", "__main__"}),
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of the package that `name` imports (a `from pkg import sub` counts `pkg.sub`)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                target = node.module or ""
            candidates = [target, *(f"{target}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found.update(c for c in candidates if c in known and c != name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(package)"


def test_cycle_finder_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_import_reader_resolves_relative_and_from_imports(tmp_path: Path) -> None:
    module = tmp_path / "mod.py"
    module.write_text("from . import sibling\nfrom .pkg import thing\nimport loraguard.errors\n")
    known = {"loraguard.x.sibling", "loraguard.x.pkg.thing", "loraguard.errors", "loraguard.x.pkg"}
    assert _imports("loraguard.x.mod", module, known) == known


def test_no_import_circle_between_modules() -> None:
    assert _cycles(_graph()) == []


def test_no_import_circle_between_rooms() -> None:
    rooms: dict[str, set[str]] = defaultdict(set)
    for module, targets in _graph().items():
        rooms[_room(module)].update(_room(t) for t in targets if _room(t) != _room(module))
    rooms = {room: rooms.get(room, set()) for room in {*rooms, *(t for ts in rooms.values() for t in ts)}}
    assert _cycles(rooms) == []


def _level(room: str) -> int | None:
    return next((i for i, layer in enumerate(LAYERS) if room in layer), None)


def test_every_room_has_a_layer() -> None:
    rooms = {_room(m) for m in _modules()} - {"(package)"}
    assert sorted(r for r in rooms if _level(r) is None) == []


@pytest.mark.parametrize("layer", range(len(LAYERS)))
def test_rooms_only_look_down(layer: int) -> None:
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in _graph().items()
        if _level(_room(module)) == layer
        for target in targets
        if (_level(_room(target)) or 0) > layer
    )
    assert upward == []
