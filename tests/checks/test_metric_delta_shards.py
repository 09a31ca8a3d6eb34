"""metric_delta from mergeable statistics: any split of the rows into shards, merged in any
order, reports what one run over every row does; the figures are the exact metrics, rounded
once, within 1e-12 of scikit-learn's."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from functools import reduce
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from parityspec.backends.base import Predictions
from parityspec.checks import metric_delta
from parityspec.checks.base import CheckInputs, CheckResult
from parityspec.data import Dataset
from tests.checks.conftest import CANDIDATE, REFERENCE, build_spec, check_spec, resolve_tolerances

SETTINGS = settings(max_examples=60, deadline=None)
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

# Few distinct values, so that scores tie within and across shards.
PROBABILITY = st.one_of(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 1.0]), st.floats(0, 1))
VALUE = st.one_of(st.sampled_from([0.0, 1.0, -2.5]), st.floats(-1e6, 1e6))


@st.composite
def cases(draw, nonfinite: bool = True):
    """(task, truth, reference, candidate, classes): ground truth the model's classes (some
    absent), outputs with ties, rows with NaN or Inf in one or both backends."""
    task = draw(st.sampled_from(["binary", "multiclass", "regression"]))
    n = draw(st.integers(1, 40))
    if task == "regression":
        truth = np.array(draw(st.lists(VALUE, min_size=n, max_size=n)))
        outputs = [
            np.array(draw(st.lists(VALUE, min_size=n, max_size=n)))
            if draw(st.booleans())
            else truth + np.array(draw(st.lists(st.floats(-1, 1), min_size=n, max_size=n)))
            for _ in range(2)
        ]
        classes = None
    else:
        k = 2 if task == "binary" else draw(st.integers(3, 4))
        held = draw(st.integers(1, k))  # classes beyond `held` are absent from the truth
        truth = np.array(draw(st.lists(st.integers(0, held - 1), min_size=n, max_size=n)))
        outputs = []
        for _ in range(2):
            rows = draw(st.lists(st.lists(PROBABILITY, min_size=k, max_size=k), min_size=n))
            values = np.array(rows[:n] + [[0.5] * k] * (n - len(rows)))
            if task == "binary" and draw(st.booleans()):
                values[:, 0] = 1 - values[:, 1]
            outputs.append(values)
        classes = [f"c{i}" for i in range(k)]
        truth = np.array(classes)[truth]
    if draw(st.booleans()):  # a float32 runtime
        outputs[1] = outputs[1].astype(np.float32)
    if task != "regression":
        for values in outputs:  # a row of zeros has no distribution
            values[values.sum(axis=1) == 0, 0] = 1.0
    if nonfinite:
        for values in outputs:
            for row in draw(st.lists(st.integers(0, n - 1), max_size=2)):
                values[row] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    return task, truth, outputs[0], outputs[1], classes


def inputs_of(task, truth, ref, cand, classes, rows=slice(None), batch_size=4096):
    """The CheckInputs of `rows`: a shard's data, ground truth and outputs are its own."""
    index = np.arange(len(truth))[rows]
    data = Dataset(pd.DataFrame({"f0": index.astype(float)}), truth[rows])
    output = "prediction" if task == "regression" else "probabilities"
    return CheckInputs(
        build_spec(task, threshold=0.5, batch_size=batch_size),
        data,
        Predictions(REFERENCE, {output: ref[rows]}, classes=classes),
        Predictions(CANDIDATE, {output: cand[rows]}, classes=classes),
        first_row=int(index[0]) if len(index) else 0,
    )


def shown(result: CheckResult) -> str:
    return json.dumps(
        {
            "status": result.status,
            "reason": result.reason,
            "figures": result.figures,
            "details": result.details,
            "gates": [g.as_dict() for g in result.gates],
        },
        sort_keys=True,
    )


def check_and_tolerances():
    spec = check_spec(metric_delta)
    return spec, resolve_tolerances(spec)


@SETTINGS
@given(cases(), st.data())
def test_any_split_merged_in_any_order_reports_what_one_run_does(case, data):
    task, truth, ref, cand, classes = case
    spec, tolerances = check_and_tolerances()
    whole = inputs_of(task, truth, ref, cand, classes)
    expected = shown(metric_delta.run(spec, tolerances, whole))
    n = len(truth)
    # Repeated cuts make empty shards.
    cuts = [0, *sorted(data.draw(st.lists(st.integers(0, n), max_size=8))), n]
    batch_size = data.draw(st.sampled_from([1, 3, 4096]))
    summaries = [
        metric_delta.summarize(
            spec,
            tolerances,
            inputs_of(task, truth, ref, cand, classes, slice(a, b), batch_size),
        )
        for a, b in pairwise(cuts)
    ]
    order = data.draw(st.permutations(range(len(summaries))))
    folded = reduce(metric_delta.Summary.merge, [summaries[i] for i in order])
    assert shown(metric_delta.conclude(spec, tolerances, folded, whole)) == expected
    # A tree of merges, not only a fold: associativity.
    while len(summaries) > 1:
        at = data.draw(st.integers(0, len(summaries) - 2))
        summaries[at : at + 2] = [summaries[at].merge(summaries[at + 1])]
    assert shown(metric_delta.conclude(spec, tolerances, summaries[0], whole)) == expected


@SETTINGS
@given(cases(nonfinite=False))
def test_scores_agree_with_scikit_learn(case):
    task, truth, ref, cand, classes = case
    spec, tolerances = check_and_tolerances()
    result = metric_delta.run(spec, tolerances, inputs_of(task, truth, ref, cand, classes))
    codes = truth if classes is None else np.searchsorted(classes, truth)
    present = np.unique(codes)
    for backend, values in ((REFERENCE, ref), (CANDIDATE, cand)):
        scores = result.details["scores"][backend]
        expected = sklearn_scores(task, codes, values, present)
        for metric, value in expected.items():
            # scikit-learn's log loss of float32 values is float32 arithmetic: ours logs
            # in float64 the probabilities it clips.
            rel = 1e-6 if metric == "log_loss" and values.dtype == np.float32 else 1e-12
            if metric in result.details["undefined"]:
                assert math.isnan(scores[metric])
            else:
                assert scores[metric] == pytest.approx(value, rel=rel, abs=rel / 1000), metric


def sklearn_scores(task, codes, values, present) -> dict[str, float]:
    if task == "regression":
        return {
            "rmse": math.sqrt(skm.mean_squared_error(codes, values)),
            "mae": skm.mean_absolute_error(codes, values),
            **({"r2": skm.r2_score(codes, values)} if len(codes) > 1 else {}),
        }
    normalised = values / values.sum(axis=1, keepdims=True)
    labels = (values[:, 1] >= 0.5).astype(int) if task == "binary" else values.argmax(axis=1)
    k = values.shape[1]
    scores = {
        "accuracy": skm.accuracy_score(codes, labels),
        "log_loss": skm.log_loss(codes, normalised, labels=np.arange(k)),
    }
    if len(present) > 1:
        scores["roc_auc"] = (
            skm.roc_auc_score(codes, values[:, 1])
            if task == "binary"
            else np.mean([skm.roc_auc_score(codes == c, normalised[:, c]) for c in present])
        )
    if task == "multiclass":
        scores["f1"] = skm.f1_score(codes, labels, labels=present, average="macro")
    elif 1 in present:
        scores["f1"] = skm.f1_score(codes, labels, zero_division=0)
    return scores


# --- exactness: the exact metric, rounded once ---------------------------------------------

# Squares exact as two floats need them clear of the subnormal range: 0, or |x| >= 1e-100.
FINITE = st.floats(-1e12, 1e12).filter(lambda x: x == 0 or abs(x) >= 1e-100)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(FINITE, FINITE), min_size=2, max_size=30))
def test_regression_figures_are_the_exact_ones_rounded_once(pairs):
    truth, prediction = (np.array(column) for column in zip(*pairs, strict=True))
    spec, tolerances = check_and_tolerances()
    result = metric_delta.run(
        spec, tolerances, inputs_of("regression", truth, prediction, prediction.copy(), None)
    )
    scores = result.details["scores"][REFERENCE]
    y = [Fraction(v) for v in truth]
    d = [Fraction(a) - Fraction(b) for a, b in pairs]
    n = len(y)
    assert scores["mae"] == float(sum(abs(x) for x in d) / n)
    mse = sum(x * x for x in d) / n
    total = sum(v * v for v in y) - sum(y) ** 2 / n
    if mse == 0:
        assert scores["r2"] == 1.0
    elif total == 0:
        assert scores["r2"] == 0.0
    else:
        assert scores["r2"] == float(1 - mse * n / total)
    # Correctly rounded: the exact root lies within half an ulp of the figure.
    rmse = scores["rmse"]
    half = Fraction(math.ulp(rmse)) / 2
    assert max(Fraction(rmse) - half, Fraction(0)) ** 2 <= mse <= (Fraction(rmse) + half) ** 2


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), PROBABILITY), min_size=2, max_size=40))
def test_binary_roc_auc_is_the_exact_mann_whitney_statistic(rows):
    positive = [p for is_pos, p in rows if is_pos]
    negative = [p for is_pos, p in rows if not is_pos]
    truth = np.array(["no", "yes"])[[int(is_pos) for is_pos, _ in rows]]
    p1 = np.array([p for _, p in rows])
    values = np.column_stack([1 - p1, p1])
    spec = check_spec(metric_delta, metrics=["roc_auc"])
    result = metric_delta.run(
        spec,
        resolve_tolerances(spec),
        inputs_of("binary", truth, values, values.copy(), ["no", "yes"]),
    )
    auc = result.details["scores"][REFERENCE]["roc_auc"]
    if not positive or not negative:
        assert result.details["undefined"] == ["roc_auc"] and math.isnan(auc)
        return
    wins = sum(Fraction(int(p > q)) + Fraction(int(p == q), 2) for p in positive for q in negative)
    assert auc == float(wins / (len(positive) * len(negative)))


def test_ranks_grow_with_the_distinct_scores_not_the_rows():
    rng = np.random.default_rng(0)
    n = 5000
    truth = np.array(["no", "yes"])[rng.integers(0, 2, n)]
    p1 = rng.integers(0, 10, n) / 10  # ten distinct scores
    values = np.column_stack([1 - p1, p1])
    spec, tolerances = check_and_tolerances()
    summary = metric_delta.summarize(
        spec,
        tolerances,
        inputs_of("binary", truth, values, values.copy(), ["no", "yes"], batch_size=128),
    )
    ranks = summary.reference.ranks[1]
    assert len(ranks.scores) == 10
    assert int(ranks.positive.sum() + ranks.negative.sum()) == n
    assert summary.reference.confusion is not None and summary.reference.confusion.shape == (2, 2)


def test_shards_that_disagree_on_the_classes_fail_whatever_the_order():
    truth = np.array(["a", "b", "a"])
    values = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    spec, tolerances = check_and_tolerances()
    one = metric_delta.summarize(
        spec, tolerances, inputs_of("binary", truth, values, values, ["a", "b"], slice(0, 2))
    )
    two = metric_delta.summarize(
        spec, tolerances, inputs_of("binary", truth, values, values, ["b", "a"], slice(2, 3))
    )
    whole = inputs_of("binary", truth, values, values, ["a", "b"])
    first = metric_delta.conclude(spec, tolerances, one.merge(two), whole)
    second = metric_delta.conclude(spec, tolerances, two.merge(one), whole)
    assert first.status == "failed" and "classes differ" in first.reason
    assert shown(first) == shown(second)
