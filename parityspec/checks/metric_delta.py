"""Task metrics against the ground truth, per backend; the candidate may lose at most a little.

The drop is measured in the metric's own units, signed so that positive means worse:
`reference - candidate` for accuracy, ROC AUC, F1 and R2; `candidate - reference` for
log loss, RMSE and MAE.

A classifier's ground truth is mapped onto the model's own classes (`checks/classes.py`),
not onto those the rows happen to hold. Accuracy and log loss cover every class the model
knows; ROC AUC (one-vs-rest) and F1 average over the classes present in the rows, and
`classes_absent_from_truth` names the others. A metric no model can score on these rows (ROC
AUC of a single class, the positive class's F1 without a positive row) is `undefined`, not a
drop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from parityspec.checks.base import (
    CheckInputs,
    CheckResult,
    CheckSpecBase,
    Gate,
    judge,
    nonfinite_failure,
)
from parityspec.checks.classes import ClassMismatch, ModelClasses, model_classes
from parityspec.errors import InputError
from parityspec.spec.models import SpecBase
from parityspec.spec.profiles import CheckTolerances, NonNegative, tolerance

TYPE = "metric_delta"
TASKS = ("binary", "multiclass", "regression")
NEEDS_MODELS = False

Metric = Literal["accuracy", "roc_auc", "f1", "log_loss", "rmse", "mae", "r2"]
LOWER_IS_BETTER = {"log_loss", "rmse", "mae"}
DEFAULT_METRICS = {
    "binary": ["accuracy", "roc_auc", "f1", "log_loss"],
    "multiclass": ["accuracy", "roc_auc", "f1", "log_loss"],
    "regression": ["rmse", "mae", "r2"],
}


class Tolerances(CheckTolerances):
    max_metric_drop: NonNegative = tolerance(
        strict=0.001,
        default=0.005,
        lenient=0.01,
        doc="Metrics: the largest allowed worsening of a task metric against the reference.",
    )


class Spec(CheckSpecBase, tolerances=Tolerances):
    type: Literal["metric_delta"]
    metrics: list[Metric] | None = None
    """Default: accuracy, roc_auc, f1, log_loss for classifiers; rmse, mae, r2 for regressors."""


def problems(check: Spec, spec: SpecBase) -> list[tuple[str, str, str | None]]:
    """(key, message, hint) for metrics that do not fit the task, and for a spec whose data
    has no ground truth to score against."""
    task = spec.model.task
    allowed = DEFAULT_METRICS.get(task, [])
    found: list[tuple[str, str, str | None]] = [
        (
            f"metrics.{i}",
            f"metric '{m}' does not apply to task '{task}'",
            f"use one of: {', '.join(allowed)}",
        )
        for i, m in enumerate(check.metrics or [])
        if m not in allowed
    ]
    data = spec.data
    if task in TASKS and data.target is None and data.sklearn is None and data.path is not None:
        found.append(("type", "metric_delta needs ground truth", "set data.target"))
    return found


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    task = inputs.spec.model.task
    if inputs.data.target is None:
        raise InputError("metric_delta needs ground truth: set data.target")
    names = spec.metrics or DEFAULT_METRICS[task]
    # The metrics need every row at once (ROC AUC sorts them): read the outputs whole.
    output = "prediction" if task == "regression" else "probabilities"
    ref_values = np.asarray(inputs.reference.outputs[output])
    cand_values = np.asarray(inputs.candidate.outputs[output])
    truth, details = np.asarray(inputs.data.target), {}
    if task != "regression":
        try:
            classes = _known_classes(inputs, ref_values.shape[1])
        except ClassMismatch as error:
            return CheckResult("failed", str(error))
        truth = classes.codes(truth)
        cand_values = np.asarray(classes.candidate(cand_values))
        details = _class_details(classes, truth, ref_values.shape[1])
    undefined = _undefined(names, task, truth)
    threshold = inputs.spec.model.threshold
    # Scored only when every value is finite: one pass per backend, not one per metric.
    ref_unscored = undefined if np.isfinite(ref_values).all() else names
    cand_unscored = undefined if np.isfinite(cand_values).all() else names
    ref = {m: _score(m, task, truth, ref_values, threshold, ref_unscored) for m in names}
    cand = {m: _score(m, task, truth, cand_values, threshold, cand_unscored) for m in names}
    drops = {m: _drop(m, ref[m], cand[m]) for m in names if m not in undefined}
    limit = tolerances.max_metric_drop
    gates = [Gate(f"{m}_drop", drop, "<=", "max_metric_drop", limit) for m, drop in drops.items()]
    nonfinite = nonfinite_failure(inputs, _nonfinite_rows(ref_values), _nonfinite_rows(cand_values))
    status, reason = judge(gates, extra_failures=[nonfinite])
    scores = {inputs.reference.backend: ref, inputs.candidate.backend: cand}
    return CheckResult(
        status,
        reason,
        figures={"samples": len(truth), "drops": drops},
        tolerances={"max_metric_drop": limit},
        details={"scores": scores, "undefined": undefined, **details},
        gates=gates,
    )


def _known_classes(inputs: CheckInputs, n_columns: int) -> ModelClasses:
    classes = model_classes(inputs, n_columns)
    if classes.labels is None:
        held = "none" if inputs.data.classes is None else len(inputs.data.classes)
        raise InputError(
            f"cannot tell which class each of the {n_columns} probability columns stands for: "
            f"neither model says its classes, and the data holds {held}",
            hint="evaluate on rows holding every class the model knows",
        )
    return classes


def _class_details(classes: ModelClasses, codes: np.ndarray, n_columns: int) -> dict:
    """Which classes each metric covers: accuracy and log loss all the model's, ROC AUC and
    F1 those present in the ground truth (a class without rows has no ranking, no recall)."""
    names = classes.names(n_columns)
    present = np.zeros(n_columns, dtype=bool)
    present[np.unique(codes)] = True
    return {
        "classes": names,
        "classes_from": classes.source,
        "classes_absent_from_truth": [n for n, p in zip(names, present, strict=True) if not p],
    }


def _undefined(names: Sequence[str], task: str, truth: np.ndarray) -> list[str]:
    """Metrics no model can score on this ground truth: ROC AUC with a single class; the
    positive class's F1 when the rows hold none of it."""
    if task == "regression":
        return []
    present = np.unique(truth)
    undefined = set()
    if len(present) < 2:
        undefined.add("roc_auc")
    if task == "binary" and 1 not in present:
        undefined.add("f1")
    return [m for m in names if m in undefined]


def _nonfinite_rows(values: np.ndarray) -> int:
    return int((~np.isfinite(values.reshape(len(values), -1)).all(axis=1)).sum())


def _skm() -> Any:
    # Imported on first use: `validate` and `plan` should not pay for scikit-learn.
    from sklearn import metrics

    return metrics


def _drop(metric: str, reference: float, candidate: float) -> float:
    return candidate - reference if metric in LOWER_IS_BETTER else reference - candidate


def _score(
    metric: str,
    task: str,
    truth: np.ndarray,
    values: np.ndarray,
    threshold: float,
    unscored: Sequence[str],
) -> float:
    if metric in unscored:
        return float("nan")
    if task == "regression":
        return float(_REGRESSION[metric](truth, values))
    binary = task == "binary"
    labels = (values[:, 1] >= threshold).astype(int) if binary else values.argmax(axis=1)
    return float(_CLASSIFICATION[metric](truth, labels, values, task))


def _roc_auc(truth: np.ndarray, _labels: np.ndarray, probabilities: np.ndarray, task: str) -> float:
    if task == "binary":
        return _skm().roc_auc_score(truth, probabilities[:, 1])
    # One-vs-rest, macro-averaged over the classes present: an absent class has no ranking.
    normalised = _normalised(probabilities)
    present = np.unique(truth)
    return float(np.mean([_skm().roc_auc_score(truth == c, normalised[:, c]) for c in present]))


def _f1(truth: np.ndarray, labels: np.ndarray, _probabilities: np.ndarray, task: str) -> float:
    if task == "binary":
        return _skm().f1_score(truth, labels, average="binary", pos_label=1, zero_division=0)
    # Macro-averaged over the classes present: the same classes for both backends.
    return _skm().f1_score(truth, labels, labels=np.unique(truth), average="macro", zero_division=0)


def _normalised(probabilities: np.ndarray) -> np.ndarray:
    """Rows summing to 1 exactly: float32 runtimes are off by rounding, and sklearn warns."""
    return probabilities / probabilities.sum(axis=1, keepdims=True)


_CLASSIFICATION: dict[str, Callable] = {
    "accuracy": lambda t, lab, p, task: _skm().accuracy_score(t, lab),
    "f1": _f1,
    # Over every class the model knows, present in the rows or not.
    "log_loss": lambda t, lab, p, task: _skm().log_loss(
        t, _normalised(p), labels=np.arange(p.shape[1])
    ),
    "roc_auc": _roc_auc,
}
_REGRESSION: dict[str, Callable] = {
    "rmse": lambda t, p: np.sqrt(_skm().mean_squared_error(t, p)),
    "mae": lambda t, p: _skm().mean_absolute_error(t, p),
    "r2": lambda t, p: _skm().r2_score(t, p),
}
