"""Task metrics against the ground truth, per backend; the candidate may lose at most a little.

The drop is measured in the metric's own units, signed so that positive means worse:
`reference - candidate` for accuracy, ROC AUC, F1 and R2; `candidate - reference` for
log loss, RMSE and MAE.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

from parityspec.checks.base import CheckInputs, CheckResult, CheckSpecBase, Gate, judge
from parityspec.errors import InputError
from parityspec.spec.profiles import NonNegative, Tolerances

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


class Spec(CheckSpecBase):
    type: Literal["metric_delta"]
    metrics: list[Metric] | None = None
    """Default: accuracy, roc_auc, f1, log_loss for classifiers; rmse, mae, r2 for regressors."""
    max_metric_drop: NonNegative | None = None


def problems(spec: Spec, task: str) -> list[tuple[str, str, str | None]]:
    """(key, message, hint) for metrics that do not fit the task."""
    allowed = DEFAULT_METRICS.get(task, [])
    return [
        (
            f"metrics.{i}",
            f"metric '{m}' does not apply to task '{task}'",
            f"use one of: {', '.join(allowed)}",
        )
        for i, m in enumerate(spec.metrics or [])
        if m not in allowed
    ]


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    task = inputs.spec.model.task
    truth = inputs.data.target_codes() if task != "regression" else inputs.data.target
    truth = None if truth is None else np.asarray(truth)
    if truth is None:
        raise InputError("metric_delta needs ground truth: set data.target")
    names = spec.metrics or DEFAULT_METRICS[task]
    scores = {}
    for backend in (inputs.reference, inputs.candidate):
        scores[backend.backend] = {
            m: _score(m, task, truth, backend.outputs, inputs.spec.model.threshold) for m in names
        }
    ref, cand = scores[inputs.reference.backend], scores[inputs.candidate.backend]
    # ROC AUC of a single-class ground truth is undefined for any model: not a drop.
    undefined = [m for m in names if m == "roc_auc" and len(np.unique(truth)) < 2]
    drops = {m: _drop(m, ref[m], cand[m]) for m in names if m not in undefined}
    limit = tolerances.max_metric_drop
    gates = [Gate(f"{m}_drop", drop, "<=", "max_metric_drop", limit) for m, drop in drops.items()]
    status, reason = judge(gates)
    return CheckResult(
        status,
        reason,
        figures={"samples": len(truth), "drops": drops},
        tolerances={"max_metric_drop": limit},
        details={"scores": scores, "undefined": undefined},
        gates=gates,
    )


def _skm():
    # Imported on first use: `validate` and `plan` should not pay for scikit-learn.
    from sklearn import metrics

    return metrics


def _drop(metric: str, reference: float, candidate: float) -> float:
    return candidate - reference if metric in LOWER_IS_BETTER else reference - candidate


def _score(metric: str, task: str, truth: np.ndarray, outputs: dict, threshold: float) -> float:
    # The metrics need every row at once (ROC AUC sorts them): read the outputs whole.
    outputs = {name: np.asarray(values) for name, values in outputs.items()}
    if task == "regression":
        prediction = outputs["prediction"]
        if not np.isfinite(prediction).all():
            return float("nan")
        return float(_REGRESSION[metric](truth, prediction))
    probabilities = outputs["probabilities"]
    if not np.isfinite(probabilities).all():
        return float("nan")
    if task == "binary":
        labels = (probabilities[:, 1] >= threshold).astype(int)
    else:
        labels = probabilities.argmax(axis=1)
    return float(_CLASSIFICATION[metric](truth, labels, probabilities, task))


def _roc_auc(truth, _labels, probabilities, task) -> float:
    if len(np.unique(truth)) < 2:
        return float("nan")
    if task == "binary":
        return _skm().roc_auc_score(truth, probabilities[:, 1])
    labels = np.arange(probabilities.shape[1])
    return _skm().roc_auc_score(truth, _normalised(probabilities), multi_class="ovr", labels=labels)


def _normalised(probabilities: np.ndarray) -> np.ndarray:
    """Rows summing to 1 exactly: float32 runtimes are off by rounding, and sklearn warns."""
    return probabilities / probabilities.sum(axis=1, keepdims=True)


_CLASSIFICATION: dict[str, Callable] = {
    "accuracy": lambda t, lab, p, task: _skm().accuracy_score(t, lab),
    "f1": lambda t, lab, p, task: _skm().f1_score(
        t, lab, average="binary" if task == "binary" else "macro", zero_division=0
    ),
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
