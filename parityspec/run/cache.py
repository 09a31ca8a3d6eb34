"""The step cache: outputs of model and predict steps stored under their plan key.

A key hashes the step's spec fragment, the bytes of the files it names, its inputs' keys
and the library versions, so an entry is reused only when nothing it depends on changed.
Predictions come back whole, and so do models whose backend can `reopen` its cached files
(ONNX, INT8). Other models (a trained scikit-learn estimator, a torch module) come back as
facts only: the executor runs them for real whenever a step they feed has to run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from parityspec.artifacts import dump_json
from parityspec.backends import BACKENDS
from parityspec.backends.base import LoadedModel, Predictions
from parityspec.plan.graph import Step
from parityspec.run.context import RunContext
from parityspec.run.outputs import StoredArray

CACHEABLE = ("model", "predict")
FORMAT = "v1"  # a new layout of entries gets a new folder, never a misread
ENTRY_FILE = "entry.json"


def restores_whole(step: Step) -> bool:
    """Whether a cached output can stand in for running the step, for any consumer."""
    if step.action != "model":
        return True
    return hasattr(BACKENDS[step.fragment["backend"]["kind"]], "reopen")


def default_cache_dir() -> Path:
    configured = os.environ.get("PARITYSPEC_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "parityspec"


class StepCache:
    def __init__(self, root: Path):
        self.root = root

    def _entry(self, step: Step) -> Path:
        return self.root / FORMAT / step.key[:2] / step.key

    def has(self, step: Step) -> bool:
        return step.action in CACHEABLE and (self._entry(step) / ENTRY_FILE).is_file()

    def store(self, step: Step, value) -> None:
        if step.action not in CACHEABLE:
            return
        target = self._entry(step)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(target.parent)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".staging-{os.getpid()}-"))
        try:
            meta = (
                _store_model(value, staging)
                if step.action == "model"
                else _store_predictions(value, staging)
            )
            (staging / ENTRY_FILE).write_text(dump_json(meta))
            os.replace(staging, target)  # a directory rename: the entry appears whole or not
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # a concurrent run stored it first

    def load(self, step: Step, ctx: RunContext):
        entry = self._entry(step)
        meta = json.loads((entry / ENTRY_FILE).read_text())
        if step.action == "predict":
            outputs = {
                name: StoredArray(entry / f"{name}.bin", spec["dtype"], tuple(spec["shape"]))
                for name, spec in meta["outputs"].items()
            }
            return Predictions(step.subject, outputs, inert=meta["inert"])
        files = {}
        for role, name in meta["files"].items():
            destination = ctx.artifact_dir(step.subject) / name
            shutil.copyfile(entry / name, destination)
            files[role] = destination
        model = LoadedModel(step.subject, meta["kind"], None, files, meta["facts"], meta["inert"])
        reopen = getattr(BACKENDS[model.kind], "reopen", None)
        return reopen(ctx, model, ctx.spec.backends[step.subject]) if reopen else model

    def clear(self) -> int:
        """Remove every entry; returns how many there were."""
        entries = list(self.root.glob("v*/??/*")) if self.root.is_dir() else []
        shutil.rmtree(self.root, ignore_errors=True)
        return len(entries)


def _remove_stale_staging(folder: Path) -> None:
    """Staging folders of a process that died while storing (their pid is in the name)."""
    for staging in folder.glob(".staging-*-*"):
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


def _store_model(model: LoadedModel, staging: Path) -> dict:
    files = {}
    for role, path in model.files.items():
        shutil.copyfile(path, staging / Path(path).name)
        files[role] = Path(path).name
    return {"kind": model.kind, "files": files, "facts": model.facts, "inert": model.inert}


def _store_predictions(predictions: Predictions, staging: Path) -> dict:
    outputs = {}
    for name, values in predictions.outputs.items():
        shutil.copyfile(values.path, staging / f"{name}.bin")
        outputs[name] = {"dtype": values.dtype.str, "shape": list(values.shape)}
    return {"outputs": outputs, "inert": predictions.inert}
