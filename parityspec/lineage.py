"""Lineage facts: library versions, content hashes and the git state of a spec's files."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

# Every run uses these; each backend module names its own (`LIBRARIES`).
CORE_LIBRARIES = ("parityspec", "numpy", "pandas")


def library_versions(names: list[str] | tuple[str, ...] = CORE_LIBRARIES) -> dict[str, str]:
    return {name: _version(name) for name in names}


@functools.cache  # a plan's keys and its report both ask; each lookup scans sys.path
def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


@functools.cache  # one read of the package per process
def code_digest() -> str:
    """A hash of parityspec's own modules: an install from another commit keeps the version
    number, and must not restore what other code computed."""
    package = Path(__file__).parent
    hashed = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        hashed.update(path.relative_to(package).as_posix().encode() + b"\0")
        hashed.update(path.read_bytes())
    return hashed.hexdigest()


def digest(value: Any) -> str:
    """A content hash of JSON-able data, stable across runs (sorted keys)."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


GIT_TIMEOUT = 5.0
"""Seconds each git command may take: lineage must never hold up or fail a run."""


def git_state(spec: Path, files: list[Path]) -> dict[str, Any]:
    """Which commit of the spec and the files it names a run checked: the commit of HEAD of
    the git work tree holding the spec, and each file's state relative to it (`clean`,
    `modified`, `untracked`, `ignored`, or `outside the repository`), keyed by the path as
    named (the spec by its file name). Without git or a work tree, `commit` is None and
    `reason` says why; nothing here raises."""
    named = {spec.name: spec, **{str(f): spec.parent / f for f in files}}
    try:
        root = Path(_git(spec.parent, "rev-parse", "--show-toplevel").strip())
        commit = _git(root, "rev-parse", "--verify", "-q", "HEAD^{commit}", check=False).strip()
        inside = {name: _inside(path, root) for name, path in named.items()}
        listed = [p for p in inside.values() if p is not None]
        status = (
            _git(
                root,
                "status",
                "--porcelain=v1",
                "-z",
                "--untracked-files=all",
                "--ignored=matching",
                "--",
                *listed,
            )
            if listed
            else ""
        )
    except _GitUnavailable as error:
        return {"commit": None, "reason": str(error), "dirty": None, "files": {}}
    changed = {entry[3:]: entry[:2] for entry in status.split("\0") if len(entry) > 3}
    states = {
        name: {
            "path": path,
            "state": "outside the repository" if path is None else _state(changed.get(path)),
        }
        for name, path in inside.items()
    }
    return {
        "commit": commit or None,
        "reason": None if commit else "the repository has no commit yet",
        "dirty": any(s["state"] != "clean" for s in states.values()),
        "files": states,
    }


class _GitUnavailable(Exception):
    pass


def _git(where: Path, *args: str, check: bool = True) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(where), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            # git status would otherwise refresh the index: a report must not touch the tree
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except FileNotFoundError:
        raise _GitUnavailable("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise _GitUnavailable(f"git did not answer within {GIT_TIMEOUT:g}s") from None
    except OSError as error:
        raise _GitUnavailable(f"git could not run: {error.strerror or error}") from None
    if check and done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise _GitUnavailable(lines[-1] if lines else f"git exited {done.returncode}")
    return done.stdout


def _inside(path: Path, root: Path) -> str | None:
    """The path relative to the repository's root, POSIX style; None outside it."""
    try:
        return Path(os.path.realpath(path)).relative_to(os.path.realpath(root)).as_posix()
    except ValueError:
        return None


def _state(code: str | None) -> str:
    """A porcelain status code; a path git does not list is tracked and unchanged."""
    if code is None:
        return "clean"
    return {"??": "untracked", "!!": "ignored"}.get(code, "modified")
