"""Loading user code and model files, with the trust rules for formats that run code."""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from parityspec.errors import InputError, UntrustedModelError, first_line

PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib"}
SAFE_SKOPS_TYPES = {"numpy.dtype"}
"""Types skops lists as untrusted that load without running code: skops rebuilds a dtype from
an empty array read with `allow_pickle=False`, never by calling a named type. Every fitted
SimpleImputer holds one (`_fit_dtype`), so without this no imputing pipeline loads. Trees
(`sklearn.tree._tree.Tree`) stay untrusted, as skops has them: they are rebuilt by calling the
type on arguments and a state read from the file."""


# What `stat` says a path is, for the message refusing it.
_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFile(Exception):
    """A path that is missing or is not a regular file; the message says which, in words."""


def file_problem(path: str | os.PathLike) -> str | None:
    """Why `path` cannot be read as a regular file, or None. Asks `stat` only: a FIFO or a
    device is never opened (opening a FIFO blocks until a writer comes)."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "no such file"
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "is a symlink loop, not a regular file"
        return f"cannot read: {error.strerror or first_line(error)}"
    except ValueError:  # an embedded NUL byte
        return "not a valid path"
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "a special file")
    return f"is {kind}, not a regular file"


def read_regular_file(path: str | os.PathLike, limit: int) -> bytes:
    """At most `limit` + 1 bytes of a regular file: counted as they are read, never taken
    from the size the file reports (a /proc file says 0, a device says nothing)."""
    problem = file_problem(path)
    if problem:
        raise NotRegularFile(problem)
    # O_NONBLOCK: should the path have become a FIFO since the stat, opening it cannot hang;
    # fstat then judges what was opened.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile("is not a regular file")
        return stream.read(limit + 1)


def importable(*folders: Path) -> None:
    """Makes each folder importable for the rest of the process: a builder, a model file or
    a converter of the team's imports its own modules (`from feats import ratio`), when
    loading and again when the pipeline runs. Appended, never prepended: a file named like
    an installed library (`yaml.py`) cannot shadow it."""
    for folder in folders:
        text = str(folder.resolve())
        if text not in sys.path:
            sys.path.append(text)


def import_folders(base_dir: Path, folders: list[str], key: str = "python_path") -> list[Path]:
    """`folders` as written in the spec, relative to `base_dir`, each an existing folder."""
    found = []
    for folder in folders:
        path = (base_dir / folder).resolve()
        if not path.is_dir():
            raise InputError(
                f"{key}: {folder} is not a folder",
                file=str(path),
                hint="paths are relative to the spec's folder",
            )
        found.append(path)
    return found


def load_callable(ref: str, base_dir: Path) -> Callable[..., Any]:
    """Import `file.py:function` relative to `base_dir`; the file runs as ordinary code,
    with `base_dir` and the file's own folder importable (`importable`)."""
    file_part, _, function = ref.rpartition(":")
    path = (base_dir / file_part).resolve()
    if not path.is_file():
        raise InputError(f"no such file {file_part!r}", file=str(path))
    importable(base_dir, path.parent)
    module_name = "parityspec_user_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:  # not a .py file: CALLABLE_PATTERN rules it out
        raise InputError(f"{file_part} is not a Python file", file=str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # pickling objects of this module needs it
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:  # a file that does not parse is bad input, not a fault
        del sys.modules[module_name]
        raise InputError(
            f"{file_part} is not valid Python: {error.msg} (line {error.lineno})", file=str(path)
        ) from error
    except ModuleNotFoundError as error:
        del sys.modules[module_name]
        raise missing_module(error, file_part) from error
    except BaseException:
        del sys.modules[module_name]  # a half-run module must not be found by the next call
        raise
    target = getattr(module, function, None)
    if not callable(target):
        raise InputError(
            f"{file_part} has no function {function!r}",
            file=str(path),
            hint=f"define `def {function}(): ...` in that file",
        )
    return target


def missing_module(error: ModuleNotFoundError, what: str) -> InputError:
    """User code importing a module found neither installed nor in an importable folder."""
    return InputError(
        f"{what} imports {error.name or 'a module'}, which is neither installed nor in the "
        "spec's folder",
        file=what,
        hint="install it, or add the folder holding it under the backend's python_path",
    )


def load_sklearn_model(path: Path, trusted: bool) -> Any:
    problem = file_problem(path)
    if problem:
        message = "model file does not exist" if problem == "no such file" else problem
        raise InputError(message, file=str(path))
    if path.suffix == ".skops":
        model = _load_skops(path, trusted)
    elif path.suffix in PICKLE_SUFFIXES:
        if not trusted:
            raise UntrustedModelError(
                "refusing to load a pickle/joblib model: loading one runs any code it holds",
                file=str(path),
                hint="save it with skops (.skops), or, if you trust its origin, set "
                "`trusted: true` on the backend or pass --trust-models",
            )
        model = _load_pickle(path)
    else:
        raise InputError(
            f"unknown model file type {path.suffix!r}",
            file=str(path),
            hint="use .skops (safe), or .joblib/.pkl with trusted: true",
        )
    if not (hasattr(model, "predict") or hasattr(model, "predict_proba")):
        raise InputError(
            f"the file holds a {type(model).__name__}, not a fitted scikit-learn estimator",
            file=str(path),
        )
    return model


def needs_trust(path: Path) -> bool:
    """Whether loading the model file takes `trusted: true`, by the rules loading it applies:
    a pickle always, a skops file when it holds types outside skops's own trusted list and
    `SAFE_SKOPS_TYPES`."""
    if path.suffix in PICKLE_SUFFIXES:
        return True
    return bool(_untrusted(_skops_types(path)))


def _skops_types(path: Path) -> list[str]:
    import skops.io as sio

    try:
        return sio.get_untrusted_types(file=path)
    except Exception as error:
        raise InputError(f"not a valid skops file: {first_line(error)}", file=str(path)) from error


def _untrusted(found: list[str]) -> list[str]:
    return [t for t in found if t not in SAFE_SKOPS_TYPES]


def _load_skops(path: Path, trusted: bool) -> Any:
    import skops.io as sio

    found = _skops_types(path)
    untrusted = _untrusted(found)
    if untrusted and not trusted:
        raise UntrustedModelError(
            f"skops file holds types that are not known to be safe: {', '.join(untrusted)}",
            file=str(path),
            hint="if you trust them, set `trusted: true` on the backend or pass --trust-models",
        )
    try:
        return sio.load(path, trusted=found)
    except Exception as error:  # a valid archive whose content skops cannot rebuild
        raise InputError(f"cannot load skops file: {first_line(error)}", file=str(path)) from error


def _load_pickle(path: Path) -> Any:
    import joblib

    try:
        return joblib.load(path)
    except ModuleNotFoundError as error:  # a team's transformer pickled by reference
        raise missing_module(error, str(path)) from error
    except Exception as error:
        raise InputError(f"cannot unpickle model: {first_line(error)}", file=str(path)) from error


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
