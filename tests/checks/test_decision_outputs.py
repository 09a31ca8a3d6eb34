"""score_parity, and label_agreement on the labels each runtime returns itself."""

from __future__ import annotations

import math

import numpy as np
import pytest

from parityspec.checks import label_agreement, score_parity
from tests.checks.conftest import build_inputs, check_spec, resolve_tolerances, run_check


def scores(rows: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=3.0, size=rows)


def test_equal_scores_pass_and_a_moved_one_fails_naming_the_rule():
    ref = scores()
    assert run_check(score_parity, {"scores": ref}, {"scores": ref.copy()}).status == "passed"
    moved = ref.copy()
    moved[3] += 1e-2
    result = run_check(score_parity, {"scores": ref}, {"scores": moved})
    assert result.status == "failed"
    assert "1 of 8 scores break |diff| <= 0.0001 + 0.0001*|ref|" in result.reason
    assert result.figures["max_abs_diff"] == pytest.approx(1e-2)


def test_the_relative_part_scales_with_the_score():
    ref = np.array([1e4, -1e4, 2.0])
    near = ref + np.array([0.5, -0.5, 0.0])  # within 1e-4 * 1e4 = 1
    assert run_check(score_parity, {"scores": ref}, {"scores": near}).status == "passed"


@pytest.mark.parametrize("value", [math.nan, math.inf])
@pytest.mark.parametrize("side", ["reference", "candidate"])
def test_nonfinite_scores_fail_under_the_loosest_tolerances(side, value):
    ref, cand = scores(), scores()
    (ref if side == "reference" else cand)[[1, 4]] = value
    loosest = {"score_atol": 1e300, "score_rtol": 1e300, "max_score_violation_fraction": 1.0}
    result = run_check(score_parity, {"scores": ref}, {"scores": cand}, tolerances=loosest)
    assert result.status == "failed"
    backend = "ref" if side == "reference" else "cand"
    assert f"non-finite outputs (NaN/Inf) in 2 rows of {backend}" in result.reason


def test_multiclass_scores_follow_the_reference_class_order():
    ref = np.random.default_rng(1).normal(size=(6, 3))
    swapped = ref[:, [2, 0, 1]]  # the candidate lists its classes as c, a, b
    inputs = build_inputs({"scores": ref}, {"scores": swapped}, "multiclass")
    inputs.reference.classes = ["a", "b", "c"]
    inputs.candidate.classes = ["c", "a", "b"]
    spec = check_spec(score_parity)
    result = score_parity.run(spec, resolve_tolerances(spec), inputs)
    assert result.status == "passed", result.reason
    assert result.figures["max_abs_diff"] == 0


def test_missing_scores_fail_naming_the_backend():
    result = run_check(score_parity, {"scores": scores()}, {"other": scores()})
    assert result.status == "failed" and "no decision scores from cand" in result.reason


PROBABILITIES = np.array([[0.9, 0.1], [0.45, 0.55], [0.6, 0.4], [0.2, 0.8]])


def test_own_labels_are_compared_and_their_rule_reported():
    """The reference decides at its own threshold (0.5 on p1 < 0.6): row 1 is class 0 for
    it, though its arg-max says 1; the candidate's label output is its arg-max."""
    ref = {"probabilities": PROBABILITIES, "labels": np.array([0, 0, 0, 1])}
    cand = {"probabilities": PROBABILITIES.copy(), "labels": np.array([0, 1, 0, 1])}
    result = run_check(label_agreement, ref, cand)
    assert result.status == "failed"
    assert result.figures["disagreements"] == 1
    assert result.details["labels_not_argmax"] == {"ref": 1, "cand": 0}
    assert "ref's own labels differ from the arg-max of its probabilities on 1 of 4" in (
        result.reason
    )
    assert result.details["labels_from"] == {"ref": "its own labels", "cand": "its own labels"}


def test_a_side_without_labels_is_read_by_its_arg_max():
    ref = {"probabilities": PROBABILITIES}
    cand = {"probabilities": PROBABILITIES.copy(), "labels": np.array([0, 1, 0, 1])}
    result = run_check(label_agreement, ref, cand)
    assert result.status == "passed", result.reason
    assert result.details["labels_from"]["ref"] == "arg-max of its probabilities"


def test_labels_alone_with_scores_and_a_label_outside_the_classes():
    ref = {"labels": np.array([0, 1, 1, 0]), "scores": scores(4)}
    cand = {"labels": np.array([0, 1, -1, 0]), "scores": scores(4)}  # -1: not a known class
    inputs = build_inputs(ref, cand, "binary")
    inputs.reference.classes = inputs.candidate.classes = [0, 1]
    spec = check_spec(label_agreement)
    result = label_agreement.run(spec, resolve_tolerances(spec), inputs)
    assert result.status == "failed"
    assert result.figures["disagreements"] == 1
    assert result.details["confusion_matrix"][1][2] == 1  # the "no label" column


def test_nan_scores_beside_a_label_fail():
    bad = scores(4)
    bad[2] = math.nan
    inputs = build_inputs(
        {"labels": np.array([0, 1, 1, 0]), "scores": scores(4)},
        {"labels": np.array([0, 1, 1, 0]), "scores": bad},
        "binary",
    )
    inputs.reference.classes = inputs.candidate.classes = [0, 1]
    spec = check_spec(label_agreement)
    tolerances = resolve_tolerances(spec, min_label_agreement=0.0)
    result = label_agreement.run(spec, tolerances, inputs)
    assert result.status == "failed"
    assert "non-finite outputs (NaN/Inf) in 1 row of cand" in result.reason
