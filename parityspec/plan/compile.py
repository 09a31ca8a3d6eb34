"""Spec -> Plan: a pure function of the spec and the bytes of the files it names; nothing is
loaded or run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from parityspec.backends import BACKENDS, key_libraries
from parityspec.checks import CHECKS
from parityspec.checks.base import CheckModule
from parityspec.checks.capabilities import check_capabilities
from parityspec.data.shards import is_sharded, shards_sha256
from parityspec.lineage import code_digest, digest, library_versions
from parityspec.loading import file_sha256
from parityspec.plan.graph import Plan, Step, needed_by, topological_order
from parityspec.spec.models import SpecBase

DATA_LOAD, DATA_SPLIT, REPORT = "data:load", "data:split", "report"


def model_step_id(spec: SpecBase, backend: str) -> str:
    backend_spec = spec.backends[backend]
    return f"{BACKENDS[backend_spec.kind].verb(backend_spec)}:{backend}"


def compile_plan(
    spec: SpecBase, only_checks: list[str] | None = None, spec_dir: Path | None = None
) -> Plan:
    """`spec_dir`: where the spec's relative paths start; their files' bytes join the keys."""
    steps = _data_steps(spec, spec_dir)
    backend_steps = [_backend_steps(spec, name, spec_dir) for name in spec.backends]
    # Every model before any prediction: the predict steps then run in one pass over the data.
    steps += [model for model, _ in backend_steps] + [predict for _, predict in backend_steps]
    checks = [c for c in spec.checks if not only_checks or c.id in only_checks]
    steps += [_check_step(spec, check) for check in checks]
    steps.append(Step(REPORT, "report", tuple(f"check:{c.id}" for c in checks)))
    steps = needed_by(topological_order(steps), {REPORT})
    return Plan(tuple(_with_keys(steps)))


def _data_steps(spec: SpecBase, spec_dir: Path | None) -> list[Step]:
    load_fragment = spec.data.model_dump(mode="json", exclude={"split", "batch_size"})
    files = _file_digests([spec.data.path] if spec.data.path else [], spec_dir)
    return [
        Step(
            DATA_LOAD,
            "data.load",
            fragment={"data": load_fragment, "task": spec.model.task, "files": files},
        ),
        Step(
            DATA_SPLIT,
            "data.split",
            (DATA_LOAD,),
            fragment={"split": spec.data.split and spec.data.split.model_dump(mode="json")},
        ),
    ]


def _backend_steps(spec: SpecBase, name: str, spec_dir: Path | None) -> tuple[Step, Step]:
    """The backend's model step and its predict step."""
    backend = spec.backends[name]
    module = BACKENDS[backend.kind]
    deps: list[str] = []
    origin = module.source(backend)
    if origin:
        deps.append(model_step_id(spec, origin))
    if module.needs_data(backend):
        deps.append(DATA_SPLIT)
    model_id = model_step_id(spec, name)
    fragment = {
        "backend": backend.model_dump(mode="json", by_alias=True),
        "model": spec.model.model_dump(mode="json"),
        "files": _file_digests([f for _, f in module.referenced_files(backend)], spec_dir),
    }
    return (
        Step(model_id, "model", tuple(deps), name, fragment),
        Step(
            f"predict:{name}",
            "predict",
            (model_id, DATA_SPLIT),
            name,
            {"batch_size": spec.prediction_batch_size()},
        ),
    )


def needs_predictions(module: CheckModule) -> bool:
    """Checks read both backends' predictions unless they say otherwise (a benchmark)."""
    return check_capabilities(module).NEEDS_PREDICTIONS


def _check_step(spec: SpecBase, check: Any) -> Step:
    module = CHECKS[check.type]
    deps = [f"predict:{b}" for b in check.between] if needs_predictions(module) else []
    if check_capabilities(module).NEEDS_MODELS:
        deps += [model_step_id(spec, b) for b in check.between]
    fragment = {
        "check": check.model_dump(mode="json"),
        "profiles": {k: v.model_dump(mode="json") for k, v in spec.profiles.items()},
    }
    if libraries := check_capabilities(module).LIBRARIES:
        fragment["libraries"] = library_versions(libraries)
    return Step(f"check:{check.id}", "check", (*deps, DATA_SPLIT), check.id, fragment)


def _with_keys(steps: list[Step]) -> list[Step]:
    """Each key hashes the step's fragment, its inputs' keys, parityspec's code and the
    versions of the core libraries and of those every registered backend kind declares."""
    versions = {**library_versions(key_libraries()), "parityspec code": code_digest()}
    keys: dict[str, str] = {}
    keyed = []
    for step in steps:
        keys[step.id] = digest(
            {
                "step": step.id,
                "fragment": step.fragment,
                "deps": [keys[d] for d in step.deps],
                "versions": versions,
            }
        )
        keyed.append(
            Step(step.id, step.action, step.deps, step.subject, step.fragment, keys[step.id])
        )
    return keyed


def _file_digests(paths: list[str], spec_dir: Path | None) -> dict[str, str | None]:
    """A changed data file, builder or model file must change the keys of what it feeds."""
    if spec_dir is None:
        return {}
    digests = {}
    for path in paths:
        resolved = spec_dir / path
        if is_sharded(spec_dir, path):  # a directory or glob of Parquet files
            digests[path] = shards_sha256(spec_dir, path)
        else:
            digests[path] = file_sha256(resolved) if resolved.is_file() else None
    return digests
