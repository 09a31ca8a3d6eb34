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


def test_example_workflow_validates_prs_and_runs_main():
    workflow = yaml.safe_load((REPO / "examples" / "ci" / "parityspec.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert "pull_request" in triggers and triggers["push"]["branches"] == ["main"]
    validate, run = workflow["jobs"]["validate"], workflow["jobs"]["run"]
    assert "pull_request" in validate["if"] and "refs/heads/main" in run["if"]
    assert any(s.get("run") == "parityspec validate specs/*.yaml" for s in validate["steps"])
    assert any("parityspec run" in s.get("run", "") for s in run["steps"])
    uses = {s.get("uses", "").split("@")[0]: s for s in run["steps"]}
    upload = uses["actions/upload-artifact"]
    assert upload["if"] == "always()" and upload["with"]["path"] == "reports/"
