"""Fixtures for the check tests: specs per task, and CheckInputs from two arrays."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest

from parityspec.backends.base import Predictions
from parityspec.checks.base import CheckInputs, CheckResult, CheckSpecBase
from parityspec.data import Dataset
from parityspec.spec.composition import Spec
from parityspec.spec.profiles import CheckTolerances, ProfileBase
from parityspec.spec.profiles import resolve_tolerances as resolve

REFERENCE, CANDIDATE = "ref", "cand"

# The output each task's checks read when the factory is given bare arrays.
DEFAULT_OUTPUT = {
    "binary": "probabilities",
    "multiclass": "probabilities",
    "regression": "prediction",
    "tensor": "output_0",
}
DEFAULT_CHECK = {
    "binary": "probability_parity",
    "multiclass": "probability_parity",
    "regression": "output_parity",
    "tensor": "output_parity",
}


def _data_section(task: str, batch_size: int) -> dict[str, Any]:
    if task == "regression":
        return {"sklearn": "diabetes", "batch_size": batch_size}
    if task == "tensor":
        return {"synthetic": {"rows": 16}, "batch_size": batch_size}
    return {"path": "rows.csv", "target": "y", "batch_size": batch_size}


def build_spec(
    task: str = "binary",
    *,
    threshold: float = 0.5,
    batch_size: int = 4096,
    worst_samples: int = 5,
    profiles: dict | None = None,
) -> Spec:
    model: dict[str, Any] = {"task": task}
    if task in ("binary", "multiclass"):
        model["threshold"] = threshold
    if task == "tensor":
        model["inputs"] = [{"name": "x", "shape": [4]}]
    return Spec.model_validate(
        {
            "parityspec": 1,
            "name": f"test-{task}",
            "data": _data_section(task, batch_size),
            "model": model,
            "backends": {
                REFERENCE: {"kind": "onnx", "path": "ref.onnx"},
                CANDIDATE: {"kind": "onnx", "path": "cand.onnx"},
            },
            "profiles": profiles or {},
            "checks": [{"id": "c", "type": DEFAULT_CHECK[task], "between": [REFERENCE, CANDIDATE]}],
            "report": {"worst_samples": worst_samples},
        }
    )


def default_dataset(rows: int) -> Dataset:
    """Two numeric feature columns whose values name the row: f0 == row, f1 == -row/2."""
    index = np.arange(rows, dtype=np.float64)
    return Dataset(pd.DataFrame({"f0": index, "f1": -index / 2}))


def build_inputs(
    reference: np.ndarray | dict[str, np.ndarray],
    candidate: np.ndarray | dict[str, np.ndarray],
    task: str = "binary",
    *,
    data: Dataset | None = None,
    spec: Spec | None = None,
    **spec_kwargs: Any,
) -> CheckInputs:
    name = DEFAULT_OUTPUT[task]
    ref = reference if isinstance(reference, dict) else {name: np.asarray(reference)}
    cand = candidate if isinstance(candidate, dict) else {name: np.asarray(candidate)}
    rows = len(next(iter(ref.values())))
    return CheckInputs(
        spec=spec or build_spec(task, **spec_kwargs),
        data=data if data is not None else default_dataset(rows),
        reference=Predictions(REFERENCE, ref),
        candidate=Predictions(CANDIDATE, cand),
    )


def check_spec(module: ModuleType, **fields: Any):
    return module.Spec.model_validate(
        {"id": "c", "type": module.TYPE, "between": [REFERENCE, CANDIDATE], **fields}
    )


def resolve_tolerances(
    check: CheckSpecBase, profiles: dict[str, ProfileBase] | None = None, **overrides: Any
) -> CheckTolerances:
    """As the executor does: the profile, then the check's own fields, then those of
    `overrides` that the check reads (a test may give every check the same loosest set)."""
    own = {k: v for k, v in overrides.items() if k in check.TOLERANCES.model_fields}
    return resolve(
        check.TOLERANCES, check.profile, profiles or {}, {**check.tolerance_overrides(), **own}
    )


def run_check(
    module: ModuleType,
    reference: np.ndarray | dict[str, np.ndarray],
    candidate: np.ndarray | dict[str, np.ndarray],
    *,
    task: str | None = None,
    check: dict[str, Any] | None = None,
    tolerances: dict[str, Any] | None = None,
    **input_kwargs: Any,
) -> CheckResult:
    """Run one check module on two outputs; `tolerances` override the resolved profile."""
    spec = check_spec(module, **(check or {}))
    tol = resolve_tolerances(spec, **(tolerances or {}))
    inputs = build_inputs(reference, candidate, task or module.TASKS[0], **input_kwargs)
    return module.run(spec, tol, inputs)


# Session-scoped so that hypothesis tests may use them (they are pure factories).
@pytest.fixture(scope="session")
def make_spec():
    return build_spec


@pytest.fixture(scope="session")
def make_inputs():
    return build_inputs


@pytest.fixture(scope="session")
def run():
    return run_check
