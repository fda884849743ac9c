"""One exception tree: every class loraguard raises on purpose lives in `errors.py` under `LoraguardError`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import loraguard
from loraguard import errors

SRC = Path(loraguard.__file__).parent


def _exception_bases(node: ast.ClassDef) -> list[str]:
    names = []
    for base in node.bases:
        name = base.attr if isinstance(base, ast.Attribute) else base.id if isinstance(base, ast.Name) else ""
        if name in {"Exception", "BaseException"} or name.endswith(("Error", "Exception", "Warning")):
            names.append(name)
        elif name in errors.__all__:
            names.append(name)
    return names


def test_no_exception_class_outside_errors_py() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "errors.py" and path.parent == SRC:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found.extend(
            f"{path.relative_to(SRC)}:{node.lineno} {node.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef) and _exception_bases(node)
        )
    assert found == [], "exception classes belong in loraguard/errors.py: " + ", ".join(found)


def test_every_error_is_in_the_tree_and_its_docstring() -> None:
    doc = errors.__doc__ or ""
    drawn = set(re.findall(r"[├└]── (\w+)", doc)) | {"LoraguardError"}
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.LoraguardError), name
        assert name in drawn, f"{name} is missing from errors.py's docstring tree"
    assert drawn <= set(errors.__all__)


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.UnknownNameError, KeyError),
        (errors.AdapterGone, KeyError),
        (errors.TimeBudgetExceededError, ValueError),
        (errors.UnknownNameError, ValueError),
    ],
)
def test_callers_catching_builtins_still_catch(cls: type[Exception], builtin: type[Exception]) -> None:
    assert issubclass(cls, builtin)


def test_key_errors_do_not_quote_their_message() -> None:
    from fault_cases import case_named

    with pytest.raises(KeyError) as info:
        case_named("no-such-case")
    assert str(info.value).startswith("no fault case named 'no-such-case'")
    assert str(errors.AdapterGone("x@1 is not loaded")) == "x@1 is not loaded"
