"""Another ONNX Runtime release, installed by pip into an environment of its own.

A backend's `runtime: {onnxruntime: "1.20.1"}` names it. The environment is built once under
the cache folder (`runtimes/<requirement>-py3.11-<hash>`, keyed by the requirements, the
interpreter and the platform) and reused by every later run. A build happens in a temporary
folder beside the final one, under a lock file, and is renamed into place only when pip has
installed everything and the runtime imports: a build cut short leaves a `.building-` folder
that is never taken for an environment and is removed by the next build.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

from parityspec.errors import InputError

FOLDER = "runtimes"
BUILDING = ".building-"
MARKER = "parityspec-runtime.json"
CACHE_TAG = "CACHEDIR.TAG"
# The step cache's tag (run/cache.py writes the same): the environments may be the first
# thing a run puts in a new cache folder, and the step cache only writes into a tagged one.
TAG_SIGNATURE = "Signature: 8a477f597d28d172789f06886806bc55"
TAG_TEXT = (
    f"{TAG_SIGNATURE}\n"
    "# This file is a cache directory tag created by parityspec (its step cache).\n"
    "# `parityspec cache clear` deletes only inside a folder holding this file.\n"
    "# For information about cache directory tags, see https://bford.info/cachedir/\n"
)
# Distributions that provide the `onnxruntime` module: onnxruntime, onnxruntime-gpu,
# onnxruntime-openvino, ...
ORT_FAMILY = re.compile(r"onnxruntime(-[a-z0-9]+)*")
EXAMPLE = 'e.g. runtime: {onnxruntime: "1.20.1"} or {onnxruntime: ">=1.20,<1.21"}'


def _quoted(value: Any) -> Any:
    if isinstance(value, dict):
        for name, version in value.items():
            if isinstance(version, int | float) and not isinstance(version, bool):
                raise ValueError(
                    f"the version of {name} must be a quoted string: YAML read {version!r} "
                    f"as a number (an unquoted 1.20 is 1.2); {EXAMPLE}"
                )
    return value


def _checked(value: dict[str, str]) -> dict[str, str]:
    requirements(value)
    return value


RuntimeField = Annotated[
    dict[str, str],
    BeforeValidator(_quoted),
    AfterValidator(_checked),
    Field(
        examples=[{"onnxruntime": "1.20.1"}],
        json_schema_extra={
            "minProperties": 1,
            "maxProperties": 2,
            "propertyNames": {"pattern": r"^(onnxruntime(-[a-z0-9]+)*|numpy)$"},
        },
    ),
]


def requirements(runtime: Mapping[str, str]) -> tuple[str, ...]:
    """pip's requirement strings for a `runtime` mapping, sorted: one onnxruntime
    distribution, and numpy if pinned. A bare version means exactly that version."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version

    found = []
    for name, version in runtime.items():
        canonical = canonicalize_name(name)
        if not (ORT_FAMILY.fullmatch(canonical) or canonical == "numpy") or name != canonical:
            raise ValueError(
                f"{name!r} is not a distribution runtime can name: one onnxruntime "
                f"distribution (onnxruntime, onnxruntime-openvino, ...) and optionally numpy, "
                f"spelt in lower case; {EXAMPLE}"
            )
        text = version.strip()
        try:
            specifier = f"=={Version(text)}" if text[:1].isdigit() else str(SpecifierSet(text))
            if not specifier:
                raise InvalidSpecifier("empty")
            found.append(str(Requirement(f"{canonical}{specifier}")))
        except (InvalidVersion, InvalidSpecifier, InvalidRequirement):
            raise ValueError(
                f"{version!r} is not a version or a version specifier for {name}; {EXAMPLE}"
            ) from None
    if sum(1 for n in runtime if n != "numpy") != 1:
        raise ValueError(f"name exactly one onnxruntime distribution; {EXAMPLE}")
    return tuple(sorted(found))


@dataclass(frozen=True)
class Environment:
    folder: Path
    requirements: tuple[str, ...]
    versions: dict[str, str]
    """What its interpreter imports: onnxruntime's and numpy's `__version__`."""

    @property
    def python(self) -> Path:
        return _python(self.folder)


def runtimes_root(cache_dir: Path) -> Path:
    """Where the environments live: `runtimes/` in the cache folder, tagged as the step
    cache tags it, so that each can be the first to write there."""
    if not (cache_dir / CACHE_TAG).is_file():
        if cache_dir.exists() and any(cache_dir.iterdir()):
            raise InputError(
                f"the cache folder {cache_dir} holds files parityspec did not write: no "
                "runtime environment is built there",
                hint="point --cache-dir or PARITYSPEC_CACHE_DIR at a new folder",
            )
        cache_dir.mkdir(parents=True, exist_ok=True)
        _write_atomically(cache_dir / CACHE_TAG, TAG_TEXT)
    return cache_dir / FOLDER


def folder_name(needed: tuple[str, ...]) -> str:
    """Readable (the requirements) and exact (a hash of everything the build depends on)."""
    python = f"py{sys.version_info.major}.{sys.version_info.minor}"
    identity = {
        "requirements": list(needed),
        "python": sys.version.split()[0],
        "implementation": sys.implementation.name,
        "interpreter": os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
        "platform": sysconfig.get_platform(),
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    readable = re.sub(r"[^A-Za-z0-9.]+", "-", "-".join(needed)).strip("-")[:60]
    return f"{readable}-{python}-{digest}"


def environment(needed: tuple[str, ...], root: Path) -> Environment:
    """The built environment for these requirements, building it first if needed."""
    final = root / folder_name(needed)
    found = _complete(final, needed)
    if found:
        return found
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f"{final.name}.lock", needed):
        found = _complete(final, needed)  # another run built it while this one waited
        if found:
            return found
        for leftover in (*root.glob(f"{BUILDING}{final.name}-*"), final):
            shutil.rmtree(leftover, ignore_errors=True)  # of builds that did not finish
        _say(f"building an environment for {', '.join(needed)} (once) ...")
        building = root / f"{BUILDING}{final.name}-{os.getpid()}"
        try:
            _build(building, needed)
            os.rename(building, final)
        except BaseException as error:
            _remove(building, error)
            raise
    found = _complete(final, needed)
    if found is None:
        raise InputError(f"the environment {final} was built but does not read back")
    return found


def _remove(folder: Path, stop: BaseException) -> None:
    """Removes a build's folder, even while a stop repeats (--timeout raises every second
    until the run ends); the stop goes on afterwards."""
    for _ in range(100):
        try:
            shutil.rmtree(folder, ignore_errors=True)
            if not folder.exists():
                return
            time.sleep(0.05)  # a killed process of the build still writing: again
        except BaseException as again:
            if type(again) is not type(stop):
                raise


def _build(folder: Path, needed: tuple[str, ...]) -> None:
    _make_venv(folder)
    _pip_install(folder, needed)
    versions = _probe(folder, needed)
    marker = {"requirements": list(needed), "versions": versions}
    _write_atomically(folder / MARKER, json.dumps(marker, indent=2, sort_keys=True))


def _make_venv(folder: Path) -> None:
    _run_quietly(
        [sys.executable, "-m", "venv", str(folder)],
        what=f"python -m venv {folder}",
        hint="the interpreter needs its venv module and ensurepip (Debian: python3-venv)",
    )


def _pip_install(folder: Path, needed: tuple[str, ...]) -> None:
    extra = () if any(r.startswith("numpy") for r in needed) else ("numpy",)
    command = [str(_python(folder)), "-m", "pip", "install", "--no-input"]
    command += ["--disable-pip-version-check", "--only-binary", ":all:", *needed, *extra]
    _run_quietly(
        command,
        what=f"pip cannot install {', '.join(needed)}",
        hint=f"name a release that has a wheel for Python {sys.version_info.major}."
        f"{sys.version_info.minor} on {sysconfig.get_platform()} (`pip index versions "
        "onnxruntime` lists them)",
    )


def _probe(folder: Path, needed: tuple[str, ...]) -> dict[str, str]:
    script = (
        "import json, numpy, onnxruntime; print(json.dumps("
        "{'onnxruntime': onnxruntime.__version__, 'numpy': numpy.__version__}))"
    )
    output = _run_quietly(
        [str(_python(folder)), "-I", "-c", script],
        what=f"{', '.join(needed)} is installed but does not import",
        hint='a release built before numpy 2 needs an older numpy: add numpy: "<2" to runtime',
    )
    versions: dict[str, str] = json.loads(output.strip().splitlines()[-1])
    return versions


def _run_quietly(command: list[str], what: str, hint: str) -> str:
    """Runs a build command, its output kept; on failure, exit 2 with its last error line.
    Stopped (Ctrl-C, --timeout), it is killed before the stop goes on."""
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own group: venv's ensurepip runs pip as a grandchild
    )
    try:
        output, _ = process.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    text = output.decode("utf-8", "replace")
    if process.returncode != 0:
        raise InputError(f"{what}: {last_error(text)}", hint=hint)
    return text


def last_error(output: str) -> str:
    """pip's reason: its last `ERROR:` line, else the last line (a traceback's)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR:")]
    return (errors or lines or ["no output"])[-1]


def _complete(folder: Path, needed: tuple[str, ...]) -> Environment | None:
    """The environment in `folder` if a build finished there: its marker (written last,
    before the rename) names these requirements, and its interpreter is there."""
    try:
        marker = json.loads((folder / MARKER).read_text())
        if tuple(marker["requirements"]) != needed or not _python(folder).exists():
            return None
        return Environment(folder, needed, dict(marker["versions"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def _locked(path: Path, needed: tuple[str, ...]) -> Iterator[None]:
    """One build per environment at a time, across processes; the lock goes with the
    process, however it ends."""
    import fcntl  # POSIX, as the subprocess's process groups are

    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(f"waiting for another run building the environment for {', '.join(needed)} ...")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(text)
    os.replace(temporary, path)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def default_cache_dir() -> Path:
    """The step cache's folder, as `run.cache.default_cache_dir` finds it (a layer above)."""
    configured = os.environ.get("PARITYSPEC_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "parityspec"
