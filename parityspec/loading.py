"""Loading user code and model files, with the trust rules for formats that run code."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from parityspec.errors import InputError, UntrustedModelError
from parityspec.spec.base import split_callable

PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib"}


def load_callable(ref: str, base_dir: Path) -> Callable[..., Any]:
    """Import `file.py:function` relative to `base_dir`; the file runs as ordinary code."""
    file_part, function = split_callable(ref)
    path = (base_dir / file_part).resolve()
    if not path.is_file():
        raise InputError(f"no such file {file_part!r}", file=str(path))
    module_name = "parityspec_user_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # pickling objects of this module needs it
    spec.loader.exec_module(module)
    target = getattr(module, function, None)
    if not callable(target):
        raise InputError(
            f"{file_part} has no function {function!r}",
            file=str(path),
            hint=f"define `def {function}(): ...` in that file",
        )
    return target


def load_sklearn_model(path: Path, trusted: bool) -> Any:
    if not path.is_file():
        raise InputError("model file does not exist", file=str(path))
    if path.suffix == ".skops":
        return _load_skops(path, trusted)
    if path.suffix in PICKLE_SUFFIXES:
        if not trusted:
            raise UntrustedModelError(
                "refusing to load a pickle/joblib model: loading one runs any code it holds",
                file=str(path),
                hint="save it with skops (.skops), or, if you trust its origin, set "
                "`trusted: true` on the backend or pass --trust-models",
            )
        return _load_pickle(path)
    raise InputError(
        f"unknown model file type {path.suffix!r}",
        file=str(path),
        hint="use .skops (safe), or .joblib/.pkl with trusted: true",
    )


def _load_skops(path: Path, trusted: bool) -> Any:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as error:
        raise InputError(f"not a valid skops file: {error}", file=str(path)) from error
    if untrusted and not trusted:
        raise UntrustedModelError(
            f"skops file holds types that are not known to be safe: {', '.join(untrusted)}",
            file=str(path),
            hint="if you trust them, set `trusted: true` on the backend or pass --trust-models",
        )
    return sio.load(path, trusted=untrusted)


def _load_pickle(path: Path) -> Any:
    import joblib

    try:
        return joblib.load(path)
    except Exception as error:
        raise InputError(f"cannot unpickle model: {error}", file=str(path)) from error


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
