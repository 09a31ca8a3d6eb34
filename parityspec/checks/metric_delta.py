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

Every metric comes from sufficient statistics that merge exactly (`Summary.merge`), so a run
split into shards reports the same bits as one over every row, whatever the split and the
order of merging: counts (a truth x predicted-label confusion matrix: accuracy, F1), exact
sums (`ExactSum`: log loss; RMSE, MAE and R2 from error-free transformations, so that each
row's (y - p)^2, |y - p| and y^2 are added without rounding, while the squares stay clear of
the subnormal range: |y - p| above about 1e-150), and for ROC AUC, per probability
column, its distinct scores with how many rows of the class and of the rest hold each. Each
figure is then rounded once from exact rational arithmetic. ROC AUC's statistics grow with
the number of distinct scores (times the number of columns); everything else is
O(classes^2), whatever the rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
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
from parityspec.checks.batching import shape_mismatch
from parityspec.checks.classes import ClassMismatch, ModelClasses, model_classes
from parityspec.errors import InputError
from parityspec.spec.models import SpecBase
from parityspec.spec.profiles import CheckTolerances, NonNegative, tolerance
from parityspec.stats import ExactSum

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
_UNIT = Fraction(1, 1 << 1074)  # an ExactSum counts units of the smallest subnormal
_VELTKAMP = float(2**27 + 1)
_NAN = float("nan")


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


# --- mergeable statistics ------------------------------------------------------------------


@dataclass
class Ranks:
    """One score column's distinct values (sorted), with how many positive and negative rows
    hold each: ROC AUC is the Mann-Whitney statistic of these counts."""

    scores: np.ndarray = field(default_factory=lambda: np.empty(0))
    positive: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    negative: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @classmethod
    def of(cls, scores: np.ndarray, positive: np.ndarray) -> Ranks:
        # + 0.0 turns -0.0 into 0.0: equal scores are one value, stored the same way.
        values, inverse = np.unique(np.asarray(scores, dtype=np.float64) + 0.0, return_inverse=True)
        pos = np.bincount(inverse[positive], minlength=len(values)).astype(np.int64)
        return cls(values, pos, np.bincount(inverse, minlength=len(values)) - pos)

    @classmethod
    def union(cls, parts: Sequence[Ranks]) -> Ranks:
        """All of `parts` in one: the union of their scores, the counts added."""
        scores = np.unique(np.concatenate([p.scores for p in parts]))
        positive = np.zeros(len(scores), dtype=np.int64)
        negative = np.zeros(len(scores), dtype=np.int64)
        for part in parts:
            at = np.searchsorted(scores, part.scores)  # each part's scores are distinct
            positive[at] += part.positive
            negative[at] += part.negative
        return cls(scores, positive, negative)

    def merge(self, other: Ranks) -> Ranks:
        return Ranks.union([self, other])

    def auc(self) -> Fraction | None:
        """P(a positive outscores a negative) + half P(tie), exactly; None without both."""
        pos, neg = self.positive, self.negative
        if int(pos.sum()) == 0 or int(neg.sum()) == 0:
            return None
        if int(pos.sum() + neg.sum()) >= 1 << 31:  # products past int64: Python integers
            pos, neg = pos.astype(object), neg.astype(object)
        below = np.cumsum(neg) - neg
        twice = int((pos * (2 * below + neg)).sum())
        return Fraction(twice, 2 * int(pos.sum()) * int(neg.sum()))


@dataclass
class RankBuffer:
    """Ranks added batch by batch: unions of batches wait until they hold as many scores as
    the ranks so far, so that adding n rows costs O(n log n), not a union per batch."""

    done: Ranks = field(default_factory=Ranks)
    waiting: list[Ranks] = field(default_factory=list)

    def add(self, ranks: Ranks) -> None:
        self.waiting.append(ranks)
        if sum(len(r.scores) for r in self.waiting) >= len(self.done.scores):
            self.done, self.waiting = Ranks.union([self.done, *self.waiting]), []

    def ranks(self) -> Ranks:
        return Ranks.union([self.done, *self.waiting]) if self.waiting else self.done


@dataclass
class Side:
    """One backend's statistics of some rows. A row with any non-finite output adds only to
    `nonfinite_rows`: with one, every metric of the backend is NaN anyway."""

    nonfinite_rows: int = 0
    confusion: np.ndarray | None = None
    """Classifiers: rows by ground-truth class (rows) and predicted label (columns)."""
    log_loss: ExactSum = field(default_factory=ExactSum)
    """The sum of -log p(true class), p normalised and clipped as scikit-learn does."""
    ranks: dict[int, Ranks] = field(default_factory=dict)
    """ROC AUC: per probability column, its scores split by whether the row is its class."""
    squared: ExactSum = field(default_factory=ExactSum)
    absolute: ExactSum = field(default_factory=ExactSum)

    def merge(self, other: Side) -> Side:
        confusion = (
            None
            if self.confusion is None or other.confusion is None
            else self.confusion + other.confusion
        )
        return Side(
            self.nonfinite_rows + other.nonfinite_rows,
            confusion,
            self.log_loss.merge(other.log_loss),
            {c: r.merge(other.ranks[c]) for c, r in self.ranks.items()},
            self.squared.merge(other.squared),
            self.absolute.merge(other.absolute),
        )


@dataclass
class Summary:
    """What the rows of a shard (or all of them) say; two merge exactly (`merge`)."""

    samples: int
    reference: Side
    candidate: Side
    truth_counts: np.ndarray | None = None
    """Classifiers: rows per class of the model."""
    truth_sum: ExactSum = field(default_factory=ExactSum)
    truth_squares: ExactSum = field(default_factory=ExactSum)
    classes: tuple[tuple[str, ...], str] | None = None
    """Classifiers: the model's class names and where they come from, for the details."""
    failure: str | None = None
    """Why the rows cannot be compared (shapes, classes): the check fails with it."""

    def merge(self, other: Summary) -> Summary:
        samples = self.samples + other.samples
        failures = [f for f in (self.failure, other.failure) if f]
        if not failures and self.classes != other.classes:
            one, two = sorted([str(self.classes), str(other.classes)])
            failures = [f"the shards' classes differ: {one} vs {two}"]
        if failures:  # the smaller message, so that the merge order does not matter
            return Summary(samples, Side(), Side(), failure=min(failures))
        counts = (
            None
            if self.truth_counts is None or other.truth_counts is None
            else self.truth_counts + other.truth_counts
        )
        return Summary(
            samples,
            self.reference.merge(other.reference),
            self.candidate.merge(other.candidate),
            counts,
            self.truth_sum.merge(other.truth_sum),
            self.truth_squares.merge(other.truth_squares),
            self.classes,
        )


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    return conclude(spec, tolerances, summarize(spec, tolerances, inputs), inputs)


def summarize(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> Summary:
    task = inputs.spec.model.task
    target: Any = inputs.data.target  # an array, or a StoredArray read by slices
    if target is None:
        raise InputError("metric_delta needs ground truth: set data.target")
    names = spec.metrics or DEFAULT_METRICS[task]
    output = "prediction" if task == "regression" else "probabilities"
    ref = inputs.reference.outputs[output]
    other = inputs.candidate.outputs[output]
    if mismatch := shape_mismatch(output, ref, other):
        return Summary(len(ref), Side(), Side(), failure=mismatch)
    batch_size = inputs.spec.data.batch_size
    if task == "regression":
        return _summarize_regression(target, ref, other, batch_size)
    n_columns = ref.shape[1]
    try:
        classes = _known_classes(inputs, n_columns)
    except ClassMismatch as error:
        return Summary(len(ref), Side(), Side(), failure=str(error))
    other = classes.candidate(other)
    threshold = inputs.spec.model.threshold
    counts = np.zeros(n_columns, dtype=np.int64)
    sides = [_ClassifierSide(task, n_columns, names), _ClassifierSide(task, n_columns, names)]
    for start in range(0, len(ref), batch_size):
        stop = start + batch_size
        codes = classes.codes(np.asarray(target[start:stop]))
        counts += np.bincount(codes, minlength=n_columns)
        for side, values in zip(sides, (ref, other), strict=True):
            side.add(codes, np.asarray(values[start:stop]), threshold)
    names_of = (tuple(classes.names(n_columns)), classes.source)
    return Summary(len(ref), sides[0].side(), sides[1].side(), counts, classes=names_of)


def conclude(
    spec: Spec, tolerances: Tolerances, summary: Summary, inputs: CheckInputs
) -> CheckResult:
    if summary.failure:
        return CheckResult("failed", summary.failure)
    task = inputs.spec.model.task
    names = spec.metrics or DEFAULT_METRICS[task]
    details: dict[str, Any] = {}
    present: list[int] = []
    if summary.truth_counts is not None and summary.classes is not None:
        present = [int(c) for c in np.flatnonzero(summary.truth_counts)]
        details = _class_details(summary.classes, present)
    undefined = _undefined(names, task, present)
    ref = _scores(names, undefined, task, summary, summary.reference, present)
    cand = _scores(names, undefined, task, summary, summary.candidate, present)
    drops = {m: _drop(m, ref[m], cand[m]) for m in names if m not in undefined}
    limit = tolerances.max_metric_drop
    gates = [Gate(f"{m}_drop", drop, "<=", "max_metric_drop", limit) for m, drop in drops.items()]
    nonfinite = nonfinite_failure(
        inputs, summary.reference.nonfinite_rows, summary.candidate.nonfinite_rows
    )
    status, reason = judge(gates, extra_failures=[nonfinite])
    scores = {inputs.reference.backend: ref, inputs.candidate.backend: cand}
    return CheckResult(
        status,
        reason,
        figures={"samples": summary.samples, "drops": drops},
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


def _class_details(classes: tuple[tuple[str, ...], str], present: list[int]) -> dict:
    """Which classes each metric covers: accuracy and log loss all the model's, ROC AUC and
    F1 those present in the ground truth (a class without rows has no ranking, no recall)."""
    names, source = classes
    return {
        "classes": list(names),
        "classes_from": source,
        "classes_absent_from_truth": [n for i, n in enumerate(names) if i not in present],
    }


def _undefined(names: Sequence[str], task: str, present: list[int]) -> list[str]:
    """Metrics no model can score on this ground truth: ROC AUC with a single class; the
    positive class's F1 when the rows hold none of it."""
    if task == "regression":
        return []
    undefined = set()
    if len(present) < 2:
        undefined.add("roc_auc")
    if task == "binary" and 1 not in present:
        undefined.add("f1")
    return [m for m in names if m in undefined]


def _drop(metric: str, reference: float, candidate: float) -> float:
    return candidate - reference if metric in LOWER_IS_BETTER else reference - candidate


# --- classifiers ---------------------------------------------------------------------------


@dataclass
class _ClassifierSide:
    """A backend's classifier statistics, added batch by batch."""

    task: str
    n_columns: int
    names: Sequence[str]
    nonfinite_rows: int = 0
    confusion: np.ndarray = field(init=False)
    log_loss: ExactSum = field(default_factory=ExactSum)
    ranks: dict[int, RankBuffer] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.confusion = np.zeros((self.n_columns, self.n_columns), dtype=np.int64)
        if "roc_auc" in self.names:
            # Binary: the positive column as it comes; else each column normalised (as today).
            columns = [1] if self.task == "binary" else range(self.n_columns)
            self.ranks = {c: RankBuffer() for c in columns}

    def add(self, codes: np.ndarray, values: np.ndarray, threshold: float) -> None:
        finite = np.isfinite(values.reshape(len(values), -1)).all(axis=1)
        if not finite.all():
            self.nonfinite_rows += int((~finite).sum())
            codes, values = codes[finite], values[finite]
        # Labels from the values in their own dtype: the threshold compares as it always has.
        labels = (
            (values[:, 1] >= threshold).astype(np.int64)
            if self.task == "binary"
            else (values.argmax(axis=1))
        )
        k = self.n_columns
        self.confusion += np.bincount(codes * k + labels, minlength=k * k).reshape(k, k)
        normalised = _normalised(values)
        if "log_loss" in self.names:
            self.log_loss.add(_row_log_loss(normalised, codes))
        for column, buffer in self.ranks.items():
            scores = values[:, 1] if self.task == "binary" else normalised[:, column]
            buffer.add(Ranks.of(scores, codes == column))

    def side(self) -> Side:
        ranks = {c: b.ranks() for c, b in self.ranks.items()}
        return Side(self.nonfinite_rows, self.confusion, self.log_loss, ranks)


def _normalised(probabilities: np.ndarray) -> np.ndarray:
    """Rows summing to 1 (in their own dtype, as before): float32 runtimes are off by
    rounding."""
    with np.errstate(invalid="ignore", divide="ignore"):  # a row of zeros: NaN, its loss too
        return probabilities / probabilities.sum(axis=1, keepdims=True)


def _row_log_loss(normalised: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """-log p(true class) of each row, p clipped to [eps, 1 - eps] of its dtype as
    scikit-learn's log_loss does (in float64 for other dtypes); the log in float64."""
    p = normalised[np.arange(len(codes)), codes]
    if p.dtype not in (np.float16, np.float32, np.float64):
        p = p.astype(np.float64)
    eps = np.finfo(p.dtype).eps
    clipped = np.clip(p, eps, p.dtype.type(1) - eps)
    return -np.log(clipped.astype(np.float64))


def _scores(
    names: Sequence[str],
    undefined: Sequence[str],
    task: str,
    summary: Summary,
    side: Side,
    present: list[int],
) -> dict[str, float]:
    if side.nonfinite_rows:  # scored only when every value is finite
        return {m: _NAN for m in names}
    return {m: _NAN if m in undefined else _score(m, task, summary, side, present) for m in names}


def _score(metric: str, task: str, summary: Summary, side: Side, present: list[int]) -> float:
    n = summary.samples
    if n == 0:
        return _NAN
    if task == "regression":
        return _regression_score(metric, summary, side)
    if metric == "log_loss":
        return side.log_loss.divided(n)
    confusion = side.confusion
    assert confusion is not None
    if metric == "accuracy":
        return float(Fraction(int(np.trace(confusion)), n))
    if metric == "f1":
        classes = [1] if task == "binary" else present
        return float(sum((_f1(confusion, c) for c in classes), Fraction(0)) / len(classes))
    # roc_auc: one-vs-rest, macro-averaged over the classes present (an absent one has no
    # ranking); binary: the positive column alone.
    columns = [1] if task == "binary" else present
    aucs = [side.ranks[c].auc() for c in columns]
    if any(a is None for a in aucs):
        return _NAN
    return float(sum((a for a in aucs if a is not None), Fraction(0)) / len(aucs))


def _f1(confusion: np.ndarray, c: int) -> Fraction:
    """2 TP / (rows of class c + rows labelled c); 0 when both are none (zero_division=0)."""
    denominator = int(confusion[c, :].sum() + confusion[:, c].sum())
    return Fraction(2 * int(confusion[c, c]), denominator) if denominator else Fraction(0)


# --- regression ----------------------------------------------------------------------------


def _summarize_regression(target: Any, ref: Any, other: Any, batch_size: int) -> Summary:
    summary = Summary(0, Side(), Side())
    for start in range(0, len(ref), batch_size):
        stop = start + batch_size
        truth = np.asarray(target[start:stop], dtype=np.float64).reshape(-1)
        if not np.isfinite(truth).all():
            raise InputError(
                "metric_delta: the ground truth holds NaN or Inf",
                hint="drop those rows from the data, or fill their target",
            )
        summary.samples += len(truth)
        square, low = _two_product(truth, truth)
        summary.truth_sum.add(truth)
        summary.truth_squares.add(np.concatenate([square, low]))
        for side, values in ((summary.reference, ref), (summary.candidate, other)):
            _add_regression(side, truth, _column(np.asarray(values[start:stop])))
    return summary


def _column(values: np.ndarray) -> np.ndarray:
    if values.ndim > 1 and values.reshape(len(values), -1).shape[1] != 1:
        raise InputError(
            f"metric_delta scores one regression output: prediction has shape {list(values.shape)}"
        )
    return values.astype(np.float64).reshape(-1)


def _add_regression(side: Side, truth: np.ndarray, prediction: np.ndarray) -> None:
    """Adds the rows' (y - p)^2 and |y - p| exactly: y - p = d + e (two-sum), each square
    and product split into two floats (two-product), every piece into an ExactSum."""
    finite = np.isfinite(prediction)
    if not finite.all():
        side.nonfinite_rows += int((~finite).sum())
        truth, prediction = truth[finite], prediction[finite]
    d, e = _two_sum(truth, -prediction)
    side.absolute.add(np.abs(d))
    side.absolute.add(np.where(d < 0, -e, e))  # |d + e| = |d| + sign(d) e: |e| <= ulp(d) / 2
    # (d + e)^2 = d^2 + 2 d e + e^2, each product exact as two floats.
    pieces = [*_two_product(d, d), *_two_product(d, e), *_two_product(d, e), *_two_product(e, e)]
    side.squared.add(np.concatenate(pieces))


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """s + e == a + b exactly, s = fl(a + b) (Knuth); e = 0 where s overflows."""
    with np.errstate(over="ignore", invalid="ignore"):
        s = a + b
        bb = s - a
        e = (a - (s - bb)) + (b - bb)
    return s, np.where(np.isfinite(e), e, 0.0)


def _split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """a == high + low with each half of 26 bits or fewer (Veltkamp)."""
    c = _VELTKAMP * a
    high = c - (c - a)
    return high, a - high


def _two_product(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """p + e == a * b exactly, p = fl(a * b) (Dekker), barring underflow of e; e = 0 where
    the product overflows (the sum is infinite then anyway)."""
    with np.errstate(over="ignore", invalid="ignore"):
        p = a * b
        a_high, a_low = _split(a)
        b_high, b_low = _split(b)
        e = ((a_high * b_high - p) + a_high * b_low + a_low * b_high) + a_low * b_low
    return p, np.where(np.isfinite(e), e, 0.0)


def _regression_score(metric: str, summary: Summary, side: Side) -> float:
    n = summary.samples
    if metric == "mae":
        return side.absolute.divided(n)
    sums = (side.squared, summary.truth_sum, summary.truth_squares)
    if any(any(s.nonfinite) for s in sums):  # an overflow: IEEE arithmetic says inf or NaN
        return _float_regression(metric, n, *(s.value for s in sums))
    squared = side.squared.units * _UNIT
    if metric == "rmse":
        return _sqrt(squared / n)
    if n < 2:  # as scikit-learn: R2 is not defined for a single sample
        return _NAN
    total = summary.truth_squares.units * _UNIT - (summary.truth_sum.units * _UNIT) ** 2 / n
    # Squares in the subnormal range lose bits: never let that make the spread negative.
    total = max(total, Fraction(0))
    # As scikit-learn's r2_score (force_finite): perfect predictions 1, a constant truth 0.
    if squared == 0:
        return 1.0
    return _rounded(1 - squared / total) if total else 0.0


def _rounded(x: Fraction) -> float:
    """x to the nearest float64; past the largest, infinite (as float division says)."""
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


def _float_regression(metric: str, n: int, squared: float, y: float, y2: float) -> float:
    with np.errstate(all="ignore"):
        if metric == "rmse":
            return float(np.sqrt(np.float64(squared) / n))
        if n < 2:
            return _NAN
        total = np.float64(y2) - np.float64(y) ** 2 / n
        return float(1.0 - np.float64(squared) / total)


def _sqrt(x: Fraction) -> float:
    """sqrt(x) correctly rounded: an integer square root with 60 bits or more, the bit below
    them saying whether it was exact (so no tie is made up)."""
    num, den = x.numerator, x.denominator
    if num == 0:
        return 0.0
    # 2 * shift extra bits put sqrt(num / den) * 2**shift at 2**64 or more.
    shift = max(0, (128 - num.bit_length() + den.bit_length()) // 2 + 1)
    scaled, rest = divmod(num << (2 * shift), den)
    root = math.isqrt(scaled)
    exact = rest == 0 and root * root == scaled
    return float(Fraction(root * 2 + (0 if exact else 1), 1 << (shift + 1)))
