"""Lineage facts: library versions and content hashes."""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import metadata
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


def digest(value: Any) -> str:
    """A content hash of JSON-able data, stable across runs (sorted keys)."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
