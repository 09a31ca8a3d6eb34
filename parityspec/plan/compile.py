"""Spec -> Plan: a pure function; nothing is loaded or run."""

from __future__ import annotations

from parityspec.backends import BACKENDS
from parityspec.checks import CHECKS
from parityspec.lineage import digest, library_versions
from parityspec.plan.graph import Plan, Step, needed_by, topological_order
from parityspec.spec.models import Spec

DATA_LOAD, DATA_SPLIT, REPORT = "data:load", "data:split", "report"


def model_step_id(spec: Spec, backend: str) -> str:
    backend_spec = spec.backends[backend]
    return f"{BACKENDS[backend_spec.kind].verb(backend_spec)}:{backend}"


def compile_plan(spec: Spec, only_checks: list[str] | None = None) -> Plan:
    steps = _data_steps(spec)
    for name in spec.backends:
        steps += _backend_steps(spec, name)
    checks = [c for c in spec.checks if not only_checks or c.id in only_checks]
    steps += [_check_step(spec, check) for check in checks]
    steps.append(Step(REPORT, "report", tuple(f"check:{c.id}" for c in checks)))
    steps = needed_by(topological_order(steps), {REPORT})
    return Plan(tuple(_with_keys(steps)))


def _data_steps(spec: Spec) -> list[Step]:
    load_fragment = spec.data.model_dump(mode="json", exclude={"split", "batch_size"})
    return [
        Step(DATA_LOAD, "data.load", fragment={"data": load_fragment, "task": spec.model.task}),
        Step(
            DATA_SPLIT,
            "data.split",
            (DATA_LOAD,),
            fragment={"split": spec.data.split and spec.data.split.model_dump(mode="json")},
        ),
    ]


def _backend_steps(spec: Spec, name: str) -> list[Step]:
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
    }
    return [
        Step(model_id, "model", tuple(deps), name, fragment),
        Step(
            f"predict:{name}",
            "predict",
            (model_id, DATA_SPLIT),
            name,
            {"batch_size": spec.data.batch_size},
        ),
    ]


def _check_step(spec: Spec, check) -> Step:
    deps = [f"predict:{b}" for b in check.between]
    if CHECKS[check.type].NEEDS_MODELS:
        deps += [model_step_id(spec, b) for b in check.between]
    fragment = {
        "check": check.model_dump(mode="json"),
        "profiles": {k: v.model_dump(mode="json") for k, v in spec.profiles.items()},
    }
    return Step(f"check:{check.id}", "check", (*deps, DATA_SPLIT), check.id, fragment)


def _with_keys(steps: list[Step]) -> list[Step]:
    """Each key hashes the step's fragment, its inputs' keys and the library versions."""
    versions = library_versions()
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
