"""The pre-commit hook and the example GitHub Actions workflow, checked as their tools read them."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO

VALID = ["specs/churn.yaml", "specs/iris.yaml"]
INVALID = "tests/data/invalid/check_unknown_profile.yaml"


def _hook() -> dict:
    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    return hook


def _run_hook(files: list[str]) -> subprocess.CompletedProcess:
    """What pre-commit does: the entry, split like a shell would, then the staged files."""
    entry = shlex.split(_hook()["entry"])
    entry[0] = str(Path(sys.executable).with_name(entry[0]))  # the venv's console script
    return subprocess.run(entry + files, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_hook_declaration():
    hook = _hook()
    assert (hook["id"], hook["language"], hook["entry"]) == (
        "parityspec-validate",
        "python",
        "parityspec validate",
    )
    files = re.compile(hook["files"])
    for path in [*VALID, "models/specs/a.json", "specs/b.yml"]:
        assert files.search(path), path
    for path in ["README.md", ".github/workflows/ci.yaml", "specs/sub/x.txt"]:
        assert not files.search(path), path


def test_hook_passes_valid_specs_and_fails_an_invalid_one():
    assert _run_hook(VALID).returncode == 0
    failed = _run_hook([*VALID, INVALID])
    assert failed.returncode == 2
    assert "check_unknown_profile.yaml:" in failed.stderr
