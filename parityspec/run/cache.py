"""The step cache: the outputs of a run's steps stored under their plan key.

A key hashes the step's spec fragment, the bytes of the files it names, its inputs' keys
and the library versions, so an entry is reused only when nothing it depends on changed.
Predictions and check results come back whole, and so do models whose backend can `reopen`
its cached files (ONNX, INT8), opened only when a step that runs uses them. Other models (a
trained scikit-learn estimator, a torch module) and the data steps come back as facts only
(the rows' fingerprint): the executor runs them for real whenever a step they feed has to
run. A warm run of an unchanged spec therefore loads no data, no model and no runtime.

An entry is a folder `root/v2/<key[:2]>/<key>` holding the step's files and `entry.json`,
which records each file's size and SHA-256 and a checksum of itself. A restore checks them
all before using anything, so a damaged entry (a file cut short, flipped bits, a file
swapped for a link) is removed and its step recomputed instead of reporting wrong numbers.
SHA-256 is the stdlib's fastest hash on CPUs with SHA instructions (about 1.8 GB/s here,
blake2b 1.0 GB/s): `benchmarks/cache_verify.py` measures what it costs a warm run.

The root carries a `CACHEDIR.TAG` written by parityspec: `cache clear` deletes only inside a
folder that has it (or that holds nothing but parityspec's layout, as caches written before
the tag did), so a home folder named by mistake is never touched.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from parityspec.artifacts import dump_json, write_text
from parityspec.backends import BACKENDS
from parityspec.backends.base import LoadedModel, Predictions, Reopen, capabilities
from parityspec.backends.context import RunContext
from parityspec.checks import CHECKS
from parityspec.checks.base import CheckResult, Gate
from parityspec.checks.capabilities import check_capabilities
from parityspec.data.stored import StoredArray
from parityspec.errors import InputError, StepError, first_line
from parityspec.lineage import digest
from parityspec.plan.graph import Plan, Step

DATA_ACTIONS = ("data.load", "data.split")
CACHEABLE = (*DATA_ACTIONS, "model", "predict")
"""And the checks that declare themselves CACHED (see `cacheable`)."""
FORMAT = "v2"  # a new layout of entries gets a new folder, never a misread
FORMATS = ("v1", "v2")  # every layout parityspec has written: `clear` removes them all
ENTRY_FILE = "entry.json"
ENTRY_KEYS = {"format", "key", "step", "action", "content", "value", "checksum"}
MAX_ENTRY_BYTES = 1 << 24
TAG_FILE = "CACHEDIR.TAG"
TAG_SIGNATURE = "Signature: 8a477f597d28d172789f06886806bc55"  # bford.info/cachedir
TAG_TEXT = (
    f"{TAG_SIGNATURE}\n"
    "# This file is a cache directory tag created by parityspec (its step cache).\n"
    "# `parityspec cache clear` deletes only inside a folder holding this file.\n"
    "# For information about cache directory tags, see https://bford.info/cachedir/\n"
)
STAGING = ".staging-"
_KEY = re.compile(r"[0-9a-f]{64}")
_SHARD = re.compile(r"[0-9a-f]{2}")
_verify_contents = True  # benchmarks/cache_verify.py turns it off to measure its cost


class DamagedCacheEntry(Exception):
    """A cache entry failed its checks and was removed; str() is the run's one-line note."""


class _Damage(Exception):
    """What is wrong with an entry, as a phrase: `predictions.bin: 12 bytes, expected 40`."""


def restores_whole(step: Step) -> bool:
    """Whether a cached output can stand in for running the step, for any consumer."""
    if step.action in DATA_ACTIONS:
        return False  # the rows are not stored: a step that runs reads them again
    if step.action != "model":
        return True
    return capabilities(BACKENDS[step.fragment["backend"]["kind"]]).reopen is not None


def default_cache_dir() -> Path:
    configured = os.environ.get("PARITYSPEC_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "parityspec"


@dataclass(frozen=True)
class DataFacts:
    """A data step restored from the cache: what the report reads of its rows, not them."""

    digest: str | None

    def fingerprint(self) -> str | None:
        return self.digest


@dataclass
class Verified:
    """What `StepCache.verify` found: how many entries it checked, and the damaged ones as
    (entry folder, reason, removed)."""

    checked: int
    damaged: list[tuple[Path, str, bool]]
    older: int
    """Entries of a layout this version never reads (`cache clear` removes them)."""


class StepCache:
    def __init__(self, root: Path, plan: Plan | None = None):
        """`plan`: the run's plan. With it, a restored model that no step left to run
        consumes opens only if something uses it; without it, every one opens at once."""
        self.root = root
        self.plan = plan
        self.disabled_reason: str | None = None
        """Set once, to a one-line note, when the cache cannot be written (a file in its
        place, a read-only or full disk, a folder holding other files): from then on
        `store` does nothing and the run goes on without the cache."""
        self._claimed = False

    def _entry(self, step: Step) -> Path:
        return self.root / FORMAT / step.key[:2] / step.key

    def has(self, step: Step) -> bool:
        """Cheap: whether an entry exists, whole or not; `load` checks its contents."""
        return cacheable(step) and os.path.lexists(self._entry(step))

    def store(self, step: Step, value: Any, *, replace: bool = False) -> None:
        """`replace`: a fresh measurement takes the place of an entry already there."""
        if not cacheable(step) or self.disabled_reason:
            return
        target = self._entry(step)
        if replace and os.path.lexists(target):
            _remove(target)
        if os.path.lexists(target):
            return
        try:
            if not self._claim_root():
                return
            target.parent.mkdir(parents=True, exist_ok=True)
            _remove_stale_staging(target.parent)
            staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f"{STAGING}{os.getpid()}-"))
        except OSError as error:
            self._disable(error)
            return
        stored = False
        try:
            content: dict[str, dict]
            if step.action in DATA_ACTIONS:
                content, meta = {}, _data_meta(step, value)
            elif isinstance(value, LoadedModel):
                content, meta = _store_model(value, staging)
            elif isinstance(value, CheckResult):
                content, meta = {}, _check_meta(value)
            else:
                content, meta = _store_predictions(value, staging)
            body = {
                "format": FORMAT,
                "key": step.key,
                "step": step.id,
                "action": step.action,
                "content": content,
                "value": meta,
            }
            (staging / ENTRY_FILE).write_text(dump_json(_sealed(body)))
            os.replace(staging, target)  # a directory rename: the entry appears whole or not
            stored = True
        except OSError as error:
            if not os.path.lexists(target):  # else a concurrent run stored it first
                self._disable(error)
        finally:
            if not stored:
                shutil.rmtree(staging, ignore_errors=True)

    def load(self, step: Step, ctx: RunContext) -> Any:
        """The step's output, once every file of its entry matches what was recorded.

        A damaged entry is removed and `DamagedCacheEntry` raised: run the step instead."""
        entry = self._entry(step)
        try:
            value = _checked_entry(entry, step.key)["value"]
            if step.action == "data.load":
                return DataFacts(value.get("fingerprint"))
            if step.action == "data.split":
                return None  # nothing to stand for: a step that runs splits the rows again
            if step.action == "check":
                return _check_result(value)
            if step.action == "predict":
                outputs = {
                    name: StoredArray(entry / f"{name}.bin", spec["dtype"], tuple(spec["shape"]))
                    for name, spec in value["outputs"].items()
                }
                return Predictions(
                    step.about, outputs, inert=value["inert"], classes=value.get("classes")
                )
            files = {}
            users = _users_files(ctx, step.about)
            for role, name in value["files"].items():
                origin = value.get("origins", {}).get(role)
                if origin in users and os.path.isfile(origin):
                    # The spec's own file, its bytes in the key: the report names it, as the
                    # cold run's did, rather than a copy.
                    files[role] = Path(origin)
                    continue
                destination = ctx.artifact_dir(step.about) / name
                shutil.copyfile(entry / name, destination)
                files[role] = destination
            model = LoadedModel(
                step.about, value["kind"], None, files, value["facts"], value["inert"]
            )
            reopen = capabilities(BACKENDS[model.kind]).reopen
            if reopen is None:
                return model
            if not self._consumed_by_a_run(step):
                return OpenedOnUse(model, lambda m: _opened_on_use(reopen, ctx, m, step, entry))
            return _opened(reopen, ctx, model, step)
        except _Damage as damage:
            raise _discarded(step.id, entry, str(damage)) from None

    def _consumed_by_a_run(self, step: Step) -> bool:
        """Whether a step that has no entry (so will run) takes this one as an input: then a
        model is opened at once, and one that does not load is recomputed before it."""
        if self.plan is None:
            return True
        return any(step.id in s.deps and not self.has(s) for s in self.plan.steps)

    def verify(self, repair: bool = False) -> Verified:
        """Check every entry's files against their recorded sizes and hashes (a model's
        loading is checked only when a run restores it); with `repair`, remove the damaged."""
        self._require_ours()
        checked, damaged = 0, []
        for entry in _entries(self.root / FORMAT):
            checked += 1
            try:
                _checked_entry(entry, entry.name)
            except _Damage as damage:
                removed = repair and _remove(entry) is None
                damaged.append((entry, str(damage), removed))
        older = sum(1 for f in FORMATS if f != FORMAT for _ in _entries(self.root / f))
        return Verified(checked, damaged, older)

    def clear(self) -> int:
        """Remove every entry of every layout; returns how many there were. Other files in
        the root stay; the root goes too when nothing but its tag is left."""
        self._require_ours()
        removed = 0
        for layout in FORMATS:
            folder = self.root / layout
            if folder.is_dir() and not folder.is_symlink():
                removed += sum(1 for _ in _entries(folder))
                shutil.rmtree(folder)
        if _tagged(self.root) and os.listdir(self.root) == [TAG_FILE]:
            (self.root / TAG_FILE).unlink()
            self.root.rmdir()
        return removed

    def _claim_root(self) -> bool:
        """Before the first write: create and tag the root, or tag a folder holding only
        parityspec's layout; a file, or a folder holding anything else, is not written to."""
        if self._claimed:
            return True
        if not self.root.exists():
            self.root.mkdir(parents=True, exist_ok=True)
        if not self.root.is_dir():
            self._disable("it is not a folder")
            return False
        if not _tagged(self.root):
            if not _only_layout(self.root):
                self._disable(
                    "it holds files parityspec did not write; "
                    "point --cache-dir or PARITYSPEC_CACHE_DIR at a new folder"
                )
                return False
            write_text(self.root / TAG_FILE, TAG_TEXT)
        self._claimed = True
        return True

    def _disable(self, why: OSError | str) -> None:
        if isinstance(why, OSError):
            why = why.strerror or first_line(why)
        self.disabled_reason = (
            f"step cache {self.root} not used ({why}); this run stores nothing in it"
        )

    def _require_ours(self) -> None:
        """`verify` and `clear` act only on a folder parityspec made its cache."""
        if not os.path.lexists(self.root):
            return
        if not self.root.is_dir():
            problem = "it is not a folder"
        elif _tagged(self.root) or _only_layout(self.root):
            return
        else:
            problem = f"it holds other files and no {TAG_FILE} written by parityspec"
        raise InputError(
            f"not a parityspec cache: {problem}; nothing in it was touched",
            file=str(self.root),
            hint="pass the cache folder itself, e.g. --cache-dir ~/.cache/parityspec",
        )


def _sealed(body: dict) -> dict:
    """The body as it reads back from JSON, with the checksum of exactly that."""
    body = json.loads(dump_json(body))
    return {**body, "checksum": digest(body)}


def _checked_entry(entry: Path, key: str) -> dict:
    """The entry's body, once its folder holds exactly its files, each of its recorded size
    and hash; else `_Damage`. Sizes are all checked before any file is read."""
    if not stat.S_ISDIR(_lstat(entry, "the entry").st_mode):
        raise _Damage("the entry is not a folder")
    body = _read_body(entry / ENTRY_FILE, key)
    content = body["content"]
    for name in sorted(content):
        info = _lstat(entry / name, name)
        if not stat.S_ISREG(info.st_mode):
            raise _Damage(f"{name}: not a regular file")
        if info.st_size != content[name]["size"]:
            raise _Damage(f"{name}: {info.st_size} bytes, expected {content[name]['size']}")
    extra = sorted(set(os.listdir(entry)) - set(content) - {ENTRY_FILE})
    if extra:
        raise _Damage(f"{extra[0]}: not part of the entry")
    if body["action"] == "predict":
        _check_shapes(body["value"]["outputs"], content)
    if _verify_contents:
        for name in sorted(content):
            if _sha256(entry / name) != content[name]["sha256"]:
                raise _Damage(f"{name}: content differs from its recorded hash")
    return body


def _read_body(path: Path, key: str) -> dict:
    with _open_regular(path, ENTRY_FILE) as handle:
        raw = handle.read(MAX_ENTRY_BYTES + 1)
    if len(raw) > MAX_ENTRY_BYTES:
        raise _Damage(f"{ENTRY_FILE}: larger than any entry parityspec writes")
    try:
        body = json.loads(raw)
    except ValueError:  # UnicodeDecodeError included
        raise _Damage(f"{ENTRY_FILE}: not valid JSON") from None
    if not isinstance(body, dict) or set(body) != ENTRY_KEYS:
        raise _Damage(f"{ENTRY_FILE}: not an entry of format {FORMAT}")
    checksum = body.pop("checksum")
    if checksum != digest(body):
        raise _Damage(f"{ENTRY_FILE}: content differs from its checksum")
    if body["format"] != FORMAT or body["key"] != key:
        raise _Damage(f"{ENTRY_FILE}: written for another step")
    for name, facts in body["content"].items():
        if name in (ENTRY_FILE, ".", "..") or Path(name).name != name:
            raise _Damage(f"{ENTRY_FILE}: names a file outside the entry: {name!r}")
        if not isinstance(facts, dict) or not isinstance(facts.get("size"), int):
            raise _Damage(f"{ENTRY_FILE}: {name} has no recorded size")
    return body


def _check_shapes(outputs: dict, content: dict) -> None:
    """A prediction file must hold exactly dtype x shape bytes, or rows would read short."""
    for name, spec in outputs.items():
        file = f"{name}.bin"
        if file not in content:
            raise _Damage(f"{file}: missing from the entry")
        needed = np.dtype(spec["dtype"]).itemsize * int(np.prod(spec["shape"], dtype=np.int64))
        if content[file]["size"] != needed:
            raise _Damage(
                f"{file}: {content[file]['size']} bytes, but {spec['dtype']} of shape "
                f"{tuple(spec['shape'])} needs {needed}"
            )


def _lstat(path: Path, what: str) -> os.stat_result:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        raise _Damage(f"{what}: missing") from None
    except OSError as error:
        raise _Damage(f"{what}: {error.strerror}") from None


def _open_regular(path: Path, what: str) -> io.BufferedReader:
    """Opened without following a link or blocking on a FIFO, and only if a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise _Damage(f"{what}: missing") from None
    except OSError as error:
        raise _Damage(f"{what}: not a regular file ({error.strerror})") from None
    handle = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        handle.close()
        raise _Damage(f"{what}: not a regular file")
    return handle


def _sha256(path: Path) -> str:
    with _open_regular(path, path.name) as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _copy_hashed(source: Path, destination: Path) -> dict:
    """Copy a file, hashing what was written: the source is read once."""
    hasher, size = hashlib.sha256(), 0
    with open(source, "rb") as reader, open(destination, "xb") as writer:
        while chunk := reader.read(1 << 20):
            hasher.update(chunk)
            writer.write(chunk)
            size += len(chunk)
    return {"size": size, "sha256": hasher.hexdigest()}


class OpenedOnUse(LoadedModel):
    """A model restored from the cache whose predictor (an ONNX Runtime session) is opened
    the first time something reads it: a warm run that only reports never opens it."""

    def __init__(self, model: LoadedModel, open_: Callable[[LoadedModel], LoadedModel]):
        self._open: Callable[[LoadedModel], LoadedModel] | None = open_
        super().__init__(model.backend, model.kind, None, model.files, model.facts, model.inert)

    @property
    def predictor(self) -> Any:
        if self._open is not None:
            open_, self._open = self._open, None
            opened = open_(self)
            self._predictor, self.files, self.facts = opened.predictor, opened.files, opened.facts
        return self._predictor

    @predictor.setter
    def predictor(self, value: Any) -> None:
        self._predictor = value

    def __repr__(self) -> str:  # the dataclass's would read the predictor, opening it
        state = "opened" if self._open is None else "not opened"
        return f"OpenedOnUse({self.backend!r}, {self.kind!r}, {state})"


def _opened(reopen: Reopen, ctx: RunContext, model: LoadedModel, step: Step) -> LoadedModel:
    try:
        return reopen(ctx, model, ctx.spec.backends[step.about])
    except Exception as error:  # the files passed their hashes yet do not load
        detail = f"{type(error).__name__}: {first_line(error)}"
        raise _Damage(f"the cached model does not load: {_clipped(detail)}") from None


def _opened_on_use(
    reopen: Reopen, ctx: RunContext, model: LoadedModel, step: Step, entry: Path
) -> LoadedModel:
    """Too late to recompute the model for the step using it: that step errors, and the
    entry is removed so that the next run recomputes it."""
    try:
        return _opened(reopen, ctx, model, step)
    except _Damage as damage:
        raise StepError(
            str(_discarded(step.id, entry, str(damage), "run again to recompute it"))
        ) from None


def _clipped(text: str, limit: int = 200) -> str:
    """A library's message can be kilobytes long; the note is one line on a terminal."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _discarded(
    step_id: str, entry: Path, reason: str, then: str = "recomputed"
) -> DamagedCacheEntry:
    note = f"cache entry of {step_id} was damaged ({reason})"
    problem = _remove(entry)
    if problem:
        note += f" and could not be removed ({problem})"
    return DamagedCacheEntry(f"{note}; {then}")


def _remove(entry: Path) -> str | None:
    """Remove an entry (renamed first, so no reader sees it half gone); None, or why not."""
    try:
        if entry.is_symlink() or not entry.is_dir():
            entry.unlink()
            return None
        trash = entry.with_name(f"{STAGING}{os.getpid()}-{secrets.token_hex(4)}")
        os.rename(entry, trash)
    except FileNotFoundError:
        return None  # a concurrent run removed it
    except OSError as error:
        return error.strerror or first_line(error)
    shutil.rmtree(trash, ignore_errors=True)  # what is left is removed as stale staging
    return None


def _entries(layout: Path) -> Iterator[Path]:
    """The entry folders of one layout, in key order, without stores under way."""
    if not layout.is_dir():
        return
    for shard in sorted(layout.iterdir()):
        if shard.is_dir() and not shard.is_symlink():
            yield from sorted(e for e in shard.iterdir() if not e.name.startswith(STAGING))


def _tagged(root: Path) -> bool:
    try:
        with _open_regular(root / TAG_FILE, TAG_FILE) as handle:
            text = handle.read(4096).decode("utf-8", "replace")
    except _Damage:
        return False
    return text.startswith(TAG_SIGNATURE) and "parityspec" in text


def _only_layout(root: Path) -> bool:
    """Whether a folder holds nothing but parityspec entries (`v1/ab/<key>`): an empty
    folder, or a cache written before the tag existed."""
    for layout in root.iterdir():
        if layout.name.startswith(f".{TAG_FILE}."):
            continue  # the tag's temporary file, left by a run killed while writing it
        if layout.name not in FORMATS or layout.is_symlink() or not layout.is_dir():
            return False
        for shard in layout.iterdir():
            if not _SHARD.fullmatch(shard.name) or shard.is_symlink() or not shard.is_dir():
                return False
            for entry in shard.iterdir():
                if not (_KEY.fullmatch(entry.name) or entry.name.startswith(STAGING)):
                    return False
    return True


def _remove_stale_staging(folder: Path) -> None:
    """Staging folders of a process that died while storing (their pid is in the name)."""
    for staging in folder.glob(f"{STAGING}*-*"):
        pid = staging.name.split("-")[1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(staging, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cacheable(step: Step) -> bool:
    if step.action == "check":
        return check_capabilities(CHECKS[step.fragment["check"]["type"]]).CACHED
    return step.action in CACHEABLE


def _check_meta(result: CheckResult) -> dict:
    return {
        "status": result.status,
        "reason": result.reason,
        "figures": result.figures,
        "tolerances": result.tolerances,
        "details": result.details,
        "gates": [g.as_dict() for g in result.gates],
        "timings": result.timings,
    }


def _check_result(value: dict) -> CheckResult:
    try:
        gates = [
            # float(): the entry is JSON, where NaN and Inf were written as text.
            Gate(g["figure"], float(g["value"]), g["op"], g["limit"], float(g["limit_value"]))
            for g in value["gates"]
        ]
        return CheckResult(
            value["status"],
            value["reason"],
            value["figures"],
            value["tolerances"],
            value["details"],
            gates,
            value["timings"],
        )
    except (KeyError, TypeError, ValueError) as error:
        raise _Damage(f"the cached check result is incomplete ({error})") from None


def _data_meta(step: Step, rows: Any) -> dict:
    """The facts a data step comes back with: the loaded rows' fingerprint (the report's
    lineage); a split keeps none."""
    return {"fingerprint": rows.fingerprint()} if step.action == "data.load" else {}


def _store_model(model: LoadedModel, staging: Path) -> tuple[dict, dict]:
    content, files = {}, {}
    for role, path in model.files.items():
        name = Path(path).name
        content[name] = _copy_hashed(path, staging / name)
        files[role] = name
    meta = {"kind": model.kind, "files": files, "facts": model.facts, "inert": model.inert}
    meta["origins"] = {role: str(Path(path).resolve()) for role, path in model.files.items()}
    return content, meta


def _users_files(ctx: RunContext, backend: str) -> set[str]:
    """The files the backend's spec names (`path:`), resolved as the model step saw them."""
    spec = ctx.spec.backends[backend]
    return {str(ctx.resolve(path)) for _, path in BACKENDS[spec.kind].referenced_files(spec)}


def _store_predictions(predictions: Predictions, staging: Path) -> tuple[dict, dict]:
    content, outputs = {}, {}
    for name, values in predictions.outputs.items():
        content[f"{name}.bin"] = _copy_hashed(values.path, staging / f"{name}.bin")
        outputs[name] = {"dtype": values.dtype.str, "shape": list(values.shape)}
    return content, {
        "outputs": outputs,
        "inert": predictions.inert,
        "classes": predictions.classes,
    }
