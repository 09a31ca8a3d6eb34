"""Atomic file writes: a reader sees the previous complete file or the new one, never half."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def dump_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, fixed float form, no NaN or Inf literals."""
    return json.dumps(_finite(value), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def write_json(path: Path, value: Any) -> Path:
    return write_text(path, dump_json(value))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        return float(repr(value)) if value != 0 else 0.0
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalars
        return _finite(value.item())
    if hasattr(value, "tolist"):
        return _finite(value.tolist())
    return value
