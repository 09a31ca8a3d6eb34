"""report.json's run.git: the commit of HEAD and the state of each file the spec names, in a
temporary git repository; without git or a repository the run still passes and says why."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from parityspec import lineage
from tests.cli.test_baseline import write_spec


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    spec = write_spec(root / "specs")
    (root / ".gitignore").write_text("specs/reports/\n")
    git(root, "add", ".gitignore", "specs/demo.yaml", "specs/models.py")
    git(root, "commit", "-q", "-m", "spec")
    return spec


def run(invoke, spec: Path, *args: str) -> dict:
    result = invoke("run", spec, "--quiet", *args)
    assert result.exit_code == 0, result.output
    return json.loads((spec.parent / "reports" / "report.json").read_text())


def test_a_clean_tree_records_head_and_every_named_file(invoke, repo):
    state = run(invoke, repo)["run"]["git"]
    assert state == {
        "commit": git(repo.parent, "rev-parse", "HEAD"),
        "reason": None,
        "dirty": False,
        "files": {
            "demo.yaml": {"path": "specs/demo.yaml", "state": "clean"},
            "models.py": {"path": "specs/models.py", "state": "clean"},  # the builder
        },
    }


def test_a_modified_builder_and_an_untracked_spec_are_named(invoke, repo):
    with (repo.parent / "models.py").open("a") as handle:
        handle.write("\n# edited\n")
    other = repo.parent / "other.yaml"
    other.write_text(repo.read_text())
    state = run(invoke, other)["run"]["git"]
    assert state["dirty"] is True
    assert state["files"] == {
        "other.yaml": {"path": "specs/other.yaml", "state": "untracked"},
        "models.py": {"path": "specs/models.py", "state": "modified"},
    }


def test_an_unrelated_commit_changes_only_the_run_section(invoke, repo):
    first = run(invoke, repo)
    (repo.parent.parent / "notes.txt").write_text("unrelated\n")
    git(repo.parent.parent, "add", "notes.txt")
    git(repo.parent.parent, "commit", "-q", "-m", "unrelated")
    second = run(invoke, repo)
    assert first["run"]["git"]["commit"] != second["run"]["git"]["commit"]
    assert second["run"]["git"]["dirty"] is False
    del first["run"], second["run"]
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def test_outside_a_repository_the_run_passes_and_says_so(invoke, tmp_path):
    spec = write_spec(tmp_path / "plain")
    state = run(invoke, spec)["run"]["git"]
    assert (state["commit"], state["dirty"], state["files"]) == (None, None, {})
    assert "not a git repository" in state["reason"]


def test_without_git_the_run_passes_and_says_so(invoke, tmp_path, monkeypatch):
    spec = write_spec(tmp_path / "plain")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    state = run(invoke, spec)["run"]["git"]
    assert (state["commit"], state["reason"]) == (None, "git is not installed")


def test_a_git_that_hangs_is_given_up(tmp_path, monkeypatch):
    slow = tmp_path / "bin"
    slow.mkdir()
    # exec: the killed process is the one holding the pipes
    (slow / "git").write_text(f"#!/bin/sh\nexec {shutil.which('sleep')} 30\n")
    (slow / "git").chmod(0o755)
    monkeypatch.setenv("PATH", str(slow))
    monkeypatch.setattr(lineage, "GIT_TIMEOUT", 0.2)
    spec = tmp_path / "s.yaml"
    spec.write_text("parityspec: 1\n")
    state = lineage.git_state(spec, [])
    assert (state["commit"], state["reason"]) == (None, "git did not answer within 0.2s")
