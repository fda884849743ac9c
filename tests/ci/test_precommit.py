"""The pre-commit hook (`.pre-commit-hooks.yaml`), run by the real `pre-commit try-repo` against this repository.

`try-repo` runs the working tree as it is (uncommitted changes included) and builds the hook's
environment each time by pip-installing this repository (the torch-free core: numpy, huggingface_hub,
typer, rich, gguf...) from PyPI: 15-30 s per run with a warm pip cache, hence `slow`. The check itself
never touches the Hugging Face Hub. Skipped without the `pre-commit` tool (the dev extra
has it) or outside a git checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _pre_commit() -> list[str] | None:
    found = shutil.which("pre-commit") or shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    if found:
        return [found]
    probe = subprocess.run([sys.executable, "-m", "pre_commit", "--version"], capture_output=True, check=False)
    return [sys.executable, "-m", "pre_commit"] if probe.returncode == 0 else None


@pytest.fixture(scope="module")
def pre_commit() -> list[str]:
    cmd = _pre_commit()
    if cmd is None:
        pytest.skip("the `pre-commit` tool is not installed (pip install 'loraguard[dev]')")
    if not (REPO / ".git").exists():
        pytest.skip(f"{REPO} is not a git checkout: `pre-commit try-repo` needs one")
    return cmd


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository holding a healthy adapter, one with a NaN weight, and an unrelated file."""
    from fault_cases import build_all, case_named

    root = tmp_path_factory.mktemp("precommit")
    built = build_all(root / "build", [case_named("plain-qv"), case_named("nan-weight")], torch=False)
    repo = root / "project"
    shutil.copytree(built["plain-qv"].adapter, repo / "models" / "good")
    shutil.copytree(built["nan-weight"].adapter, repo / "models" / "bad")
    (repo / "README.md").write_text("# a project with adapters\n")
    for args in (["init", "-q"], ["add", "-A"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    return repo


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    env |= {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org"}
    return env | {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}


def try_repo(pre_commit: list[str], project: Path, home: Path, *args: str) -> tuple[int, str]:
    env = _git_env() | {"PRE_COMMIT_HOME": str(home)}
    done = subprocess.run(
        [*pre_commit, "try-repo", str(REPO), "loraguard-check", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    out = done.stdout + done.stderr
    if done.returncode == 3 and ("pip" in out or "CalledProcessError" in out):
        pytest.skip(f"pre-commit could not build the hook's environment (is PyPI reachable?): {out[-400:]}")
    return done.returncode, out


def test_the_hook_fails_on_a_broken_adapter_and_passes_a_healthy_one(
    pre_commit: list[str], project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("pre-commit-home")
    code, out = try_repo(pre_commit, project, home, "--all-files")
    assert code == 1, out
    assert "loraguard check (LoRA adapters)" in out and "Failed" in out
    # good: no error; it warns (LG507) because its claimed tiny base is not a base the hook can resolve
    assert "FAIL bad" in out and "LG402" in out and "WARN good" in out and "LG507" in out
    assert "scan: 2 adapter(s): 1 warn, 1 fail" in out  # the hook ran once, with both folders' files

    code, out = try_repo(pre_commit, project, home, "--files", "models/good/adapter_config.json", "README.md")
    assert code == 0, out
    assert "Passed" in out and "FAIL" not in out


def test_the_hook_matches_adapter_files_only() -> None:
    yaml: Any = pytest.importorskip("yaml")
    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    import re

    assert hook["id"] == "loraguard-check" and hook["language"] == "python" and hook["entry"] == "loraguard scan"
    pattern = re.compile(hook["files"])
    for path in ("adapter_config.json", "a/b/adapter_config.json", "x/adapter_model.safetensors", "adapter_model.bin"):
        assert pattern.search(path), path
    for path in ("README.md", "config.json", "my_adapter_config.json.bak", "adapter_model.safetensors.md"):
        assert not pattern.search(path), path
