"""Atomic file writes: a reader sees the previous complete file or the new one, never half.

The temporary file is `.NAME.PID.RANDOM.tmp`: never the final name, and the PID lets the next
write of the same file remove what a killed writer left behind."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

# mkstemp creates files readable by their owner only; a report must get the usual mode.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


_SAFE = re.compile(r"[^A-Za-z0-9_.,=+\[\]-]")


def folder_name(name: str) -> str:
    """A backend's or check's id as one folder name: a swept one
    (`torch[module=../nets.py:mlp]`) holds slashes and dots that would leave the report
    folder; those become `_`, with a digest of the id so that two ids stay two folders."""
    safe = _SAFE.sub("_", name)
    if safe == name and not name.startswith("."):
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{safe.lstrip('.')}-{digest}"


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fchmod(stream.fileno(), 0o666 & ~_UMASK)
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    return path


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete `.NAME.PID.*.tmp` files left by a killed writer of `path` (its PID is gone);
    a live writer's file is left alone, so concurrent runs do not break each other."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[^.]+\.tmp")
    removed = []
    for candidate in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        match = pattern.fullmatch(candidate.name)
        if match and not _process_alive(int(match.group(1))):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by another user
        return True
    return True


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (a power cut, not only a killed process)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a directory; the rename is still atomic
    finally:
        os.close(fd)


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
