"""Concrete cases of each check, worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from parityspec.checks import (
    label_agreement,
    metric_delta,
    output_parity,
    probability_parity,
    threshold_flips,
)
from parityspec.data import Dataset
from parityspec.errors import InputError

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def one_hot_probabilities(labels, n_classes: int) -> np.ndarray:
    probabilities = np.full((len(labels), n_classes), 0.1)
    probabilities[np.arange(len(labels)), labels] = 0.8
    return probabilities


def binary(p1) -> np.ndarray:
    p1 = np.asarray(p1, dtype=np.float64)
    return np.column_stack([1 - p1, p1])


# --- label_agreement -----------------------------------------------------------------------

REF_LABELS = [0, 1, 2, 1, 0]
CAND_LABELS = [0, 2, 2, 1, 1]
CLASSES = Dataset(pd.DataFrame({"f0": np.arange(5.0)}), classes=np.array(["a", "b", "c"]))


@pytest.mark.parametrize("batch_size", [1, 2, 4096])
def test_label_agreement_confusion_matrix(run, batch_size):
    result = run(
        label_agreement,
        one_hot_probabilities(REF_LABELS, 3),
        one_hot_probabilities(CAND_LABELS, 3),
        task="multiclass",
        data=CLASSES,
        batch_size=batch_size,
        tolerances={"min_label_agreement": 0.999},
    )
    assert result.details["confusion_matrix"] == [[1, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert result.details["classes"] == ["a", "b", "c"]
    assert result.details["confusion_rows"] == "ref (rows) vs cand (columns)"
    assert result.details["disagreeing_rows"] == [1, 4]
    assert result.figures == {"samples": 5, "agreement": 0.6, "disagreements": 2}
    assert result.status == "failed"
    assert "3 of 5 labels agree" in result.reason
    assert "agreement 0.6 < min_label_agreement 0.999" in result.reason


def test_label_agreement_passes_at_exactly_the_minimum(run):
    result = run(
        label_agreement,
        one_hot_probabilities(REF_LABELS, 3),
        one_hot_probabilities(CAND_LABELS, 3),
        task="multiclass",
        tolerances={"min_label_agreement": 0.6},
    )
    assert result.status == "passed", result.reason


def test_label_agreement_nan_row_gets_the_no_label_row_and_column(run):
    ref = one_hot_probabilities(REF_LABELS, 3)
    cand = one_hot_probabilities(CAND_LABELS, 3)
    cand[2, 1] = np.nan  # the candidate has no label for row 2 (ref: class 2)
    ref[3] = [np.inf, 0.0, 0.0]  # the reference has no label for row 3 (cand: class 1)
    result = run(label_agreement, ref, cand, task="multiclass", data=CLASSES, batch_size=2)
    assert result.details["confusion_matrix"] == [
        [1, 1, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 1],
        [0, 1, 0, 0],
    ]
    assert result.figures == {"samples": 5, "agreement": 0.2, "disagreements": 4}
    assert result.details["disagreeing_rows"] == [1, 2, 3, 4]
    assert result.details["confusion_labels"] == [*result.details["classes"], "(no label)"]
    assert result.status == "failed"


def test_label_agreement_lists_at_most_worst_samples_disagreeing_rows(run):
    ref = one_hot_probabilities([0] * 10, 2)
    cand = one_hot_probabilities([1] * 10, 2)
    result = run(label_agreement, ref, cand, task="binary", worst_samples=3)
    assert result.details["disagreeing_rows"] == [0, 1, 2]
    assert result.details["confusion_matrix"] == [[0, 10], [0, 0]]


def test_label_agreement_shape_mismatch_fails(run):
    result = run(label_agreement, np.zeros((3, 2)), np.zeros((3, 3)), task="multiclass")
    assert result.status == "failed"
    assert "shapes differ" in result.reason and "(3, 2)" in result.reason


# --- threshold_flips -----------------------------------------------------------------------

FLIP_REF = [0.10, 0.29, 0.31, 0.50, 0.30, 0.60, 0.20, np.nan, 0.10, np.nan]
FLIP_CAND = [0.12, 0.31, 0.29, 0.55, 0.2999, np.nan, 0.20, 0.90, np.nan, np.nan]


def test_threshold_flips_at_the_spec_threshold(run):
    result = run(
        threshold_flips,
        binary(FLIP_REF),
        binary(FLIP_CAND),
        threshold=0.3,
        worst_samples=10,
        tolerances={"flip_margin": 0.05, "max_flip_rate": 0.001},
    )
    # Rows 1 and 2 cross 0.3; row 4 sits on it (>= counts as positive); 5, 7, 8 and 9 have
    # a NaN (8 and 9 flip though NaN >= 0.3 is False, like the other side's answer).
    assert result.figures == {
        "samples": 10,
        "threshold": 0.3,
        "flips": 7,
        "flip_rate": 7 / 10,
        "near_threshold": 3,  # reference within 0.05 of 0.3: rows 1, 2, 4
        "flips_near_threshold": 3,
    }
    rows = result.details["flipped_rows"]
    assert [r["row"] for r in rows] == [1, 2, 4, 5, 7, 8, 9]
    assert rows[0] == {
        "row": 1,
        "reference": 0.29,
        "candidate": 0.31,
        "features": {"f0": 1.0, "f1": -0.5},
    }
    assert result.status == "failed"
    assert "7 of 10 decisions flip at threshold 0.3" in result.reason


def test_threshold_flips_reads_the_threshold_from_the_spec(run):
    result = run(threshold_flips, binary(FLIP_REF), binary(FLIP_CAND), threshold=0.5)
    # At 0.5 only the NaN rows flip: 0.50 and 0.55 are both positive.
    assert result.figures["flips"] == 4
    assert result.figures["threshold"] == 0.5
    assert [r["row"] for r in result.details["flipped_rows"]] == [5, 7, 8, 9]


def test_threshold_flips_pass_at_exactly_the_allowed_rate(run):
    finite = [0, 1, 2, 3, 4, 6]  # rows 1, 2 and 4 flip
    ref, cand = binary(FLIP_REF)[finite], binary(FLIP_CAND)[finite]
    result = run(threshold_flips, ref, cand, threshold=0.3, tolerances={"max_flip_rate": 3 / 6})
    assert result.status == "passed", result.reason
    assert result.figures["flips"] == 3


def test_threshold_flips_list_at_most_worst_samples_rows(run):
    result = run(
        threshold_flips, binary(FLIP_REF), binary(FLIP_CAND), threshold=0.3, worst_samples=2
    )
    assert [r["row"] for r in result.details["flipped_rows"]] == [1, 2]
    assert result.figures["flips"] == 7


# --- metric_delta --------------------------------------------------------------------------

TRUTH = np.array(["no", "yes", "no", "yes", "yes", "no"])
SHARP = [0.2, 0.8, 0.3, 0.7, 0.9, 0.1]
VAGUE = [0.4, 0.6, 0.45, 0.55, 0.6, 0.4]


def labelled(rows_target: np.ndarray, classes=None) -> Dataset:
    features = pd.DataFrame({"f0": np.arange(len(rows_target), dtype=np.float64)})
    return Dataset(features, target=rows_target, classes=classes)


def classification_data() -> Dataset:
    return labelled(TRUTH, classes=np.array(["no", "yes"]))


def test_metric_delta_worse_candidate_has_positive_drops(run):
    result = run(
        metric_delta, binary(SHARP), binary(VAGUE), task="binary", data=classification_data()
    )
    drops = result.figures["drops"]
    codes = np.array([0, 1, 0, 1, 1, 0])
    expected = skm.log_loss(codes, binary(VAGUE)) - skm.log_loss(codes, binary(SHARP))
    assert expected > 0.1
    assert drops["log_loss"] == pytest.approx(expected, rel=1e-12)
    assert drops["accuracy"] == 0.0 and drops["roc_auc"] == 0.0 and drops["f1"] == 0.0
    assert result.status == "failed"
    assert "log_loss_drop" in result.reason
    scores = result.details["scores"]
    assert scores["cand"]["log_loss"] > scores["ref"]["log_loss"]


def test_metric_delta_better_candidate_has_negative_drops_and_passes(run):
    result = run(
        metric_delta, binary(VAGUE), binary(SHARP), task="binary", data=classification_data()
    )
    assert result.figures["drops"]["log_loss"] < 0
    assert result.status == "passed", result.reason


def test_metric_delta_classifies_at_the_spec_threshold(run):
    result = run(
        metric_delta,
        binary(SHARP),
        binary(VAGUE),
        task="binary",
        data=classification_data(),
        threshold=0.65,
        check={"metrics": ["accuracy"]},
    )
    # At 0.65 the vague candidate calls rows 1, 3 and 4 negative: accuracy 1.0 -> 0.5.
    assert result.figures["drops"] == {"accuracy": 0.5}
    assert result.details["scores"]["cand"]["accuracy"] == 0.5


def test_metric_delta_regression_drop_signs(run):
    truth = np.array([1.0, 2.0, 3.0, 4.0])
    close = truth + np.array([0.1, -0.1, 0.1, -0.1])
    far = truth + 0.5
    result = run(metric_delta, close, far, task="regression", data=labelled(truth))
    drops = result.figures["drops"]
    assert drops["rmse"] == pytest.approx(0.4)
    assert drops["mae"] == pytest.approx(0.4)
    assert drops["r2"] == pytest.approx(skm.r2_score(truth, close) - skm.r2_score(truth, far))
    assert drops["r2"] > 0
    assert result.status == "failed"
    swapped = run(metric_delta, far, close, task="regression", data=labelled(truth))
    assert all(d < 0 for d in swapped.figures["drops"].values())
    assert swapped.status == "passed", swapped.reason


@pytest.mark.parametrize("side", ["reference", "candidate"])
def test_metric_delta_nan_output_fails(run, side):
    good, bad = binary(SHARP), binary(SHARP)
    bad[2] = np.nan
    ref, cand = (bad, good) if side == "reference" else (good, bad)
    result = run(
        metric_delta,
        ref,
        cand,
        task="binary",
        data=classification_data(),
        tolerances={"max_metric_drop": 1e300},
    )
    assert result.status == "failed"
    assert all(math.isnan(d) for d in result.figures["drops"].values())


def test_metric_delta_nan_regression_output_fails(run):
    truth = np.array([1.0, 2.0, 3.0, 4.0])
    result = run(
        metric_delta,
        truth.copy(),
        np.array([1.0, np.inf, 3.0, 4.0]),
        task="regression",
        data=labelled(truth),
        tolerances={"max_metric_drop": 1e300},
    )
    assert result.status == "failed"
    assert "rmse_drop nan" in result.reason


def test_metric_delta_needs_ground_truth(run):
    with pytest.raises(InputError, match="ground truth"):
        run(metric_delta, binary(SHARP), binary(SHARP), task="binary")


# --- probability_parity --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref_shape", "cand_shape"), [((4, 2), (4, 3)), ((4, 2), (5, 2)), ((4, 2), (4,))]
)
def test_probability_parity_shape_mismatch_fails_clearly(run, ref_shape, cand_shape):
    result = run(probability_parity, np.zeros(ref_shape), np.zeros(cand_shape))
    assert result.status == "failed"
    assert result.reason == (
        f"probabilities: shapes differ, {list(ref_shape)} vs {list(cand_shape)}"
    )
    assert result.gates == []


def test_output_parity_shape_mismatch_fails_clearly(run):
    result = run(output_parity, np.zeros((4, 2)), np.zeros((4, 3)), task="tensor")
    assert result.status == "failed"
    assert "shapes differ, [4, 2] vs [4, 3]" in result.reason


def test_output_parity_with_no_common_output_fails(run):
    result = run(output_parity, {"a": np.zeros(2)}, {"b": np.zeros(2)}, task="tensor")
    assert result.status == "failed"
    assert "no output with the same name" in result.reason


def test_probability_parity_figures(run):
    ref = binary([0.5, 0.5, 0.5, 0.5])
    cand = binary([0.5, 0.6, 0.5, 0.45])  # |diff| 0.1 in both columns of row 1, 0.05 of row 3
    result = run(probability_parity, ref, cand, tolerances={"abs_tol": 0.08, "mean_tol": 0.1})
    assert result.figures["max_abs_diff"] == pytest.approx(0.1)
    assert result.figures["mean_abs_diff"] == pytest.approx(0.3 / 8)
    assert result.figures["samples_over_abs_tol"] == 1
    assert result.figures["nonfinite"] == 0
    assert result.status == "failed"
    assert result.reason.startswith("max_abs_diff 0.1 > abs_tol 0.08")
    assert "mean_abs_diff" not in result.reason
    assert result.details["would_pass_with"]["abs_tol"] == result.figures["max_abs_diff"]


# --- worst samples -------------------------------------------------------------------------


def test_worst_samples_name_rows_of_the_largest_diffs_with_their_features(run):
    ref = np.full((8, 2), 0.5)
    cand = ref.copy()
    for row, diff in {5: 0.3, 2: 0.2, 6: 0.2, 0: 0.05}.items():
        cand[row] += [-diff, diff]
    result = run(
        probability_parity, ref, cand, batch_size=3, worst_samples=3, check={"profile": "lenient"}
    )
    worst = result.details["worst_samples"]
    assert [w["row"] for w in worst] == [5, 2, 6]  # the tie 2/6 keeps the lower row first
    assert [w["abs_diff"] for w in worst] == pytest.approx([0.3, 0.2, 0.2])
    assert worst[0]["features"] == {"f0": 5.0, "f1": -2.5}
    assert worst[1]["features"] == {"f0": 2.0, "f1": -1.0}
    assert worst[0]["reference"] == [0.5, 0.5]
    assert worst[0]["candidate"] == pytest.approx([0.2, 0.8])


def test_worst_samples_put_nonfinite_rows_first_as_text(run):
    ref = np.full((4, 2), 0.5)
    cand = ref.copy()
    cand[1, 0] = 0.9
    cand[3, 1] = np.nan
    result = run(probability_parity, ref, cand, worst_samples=2)
    worst = result.details["worst_samples"]
    assert [w["row"] for w in worst] == [3, 1]
    assert worst[0]["abs_diff"] == "inf"
    assert worst[0]["candidate"] == [0.5, "nan"]


def test_output_parity_worst_samples_and_positions(run):
    ref = np.zeros((5, 2, 2))
    cand = ref.copy()
    cand[3, 1, 0] = 0.7
    cand[1, 0, 1] = 0.4
    cand[1, 1, 1] = -0.5
    result = run(output_parity, ref, cand, task="tensor", batch_size=2, worst_samples=2)
    assert [w["row"] for w in result.details["worst_samples"]] == [3, 1]
    assert result.details["worst_samples"][0]["features"] == {"f0": 3.0, "f1": -1.5}
    positions = result.details["worst_positions"]
    assert [p["position"] for p in positions] == [[3, 1, 0], [1, 1, 1]]
    assert positions[1] == {
        "position": [1, 1, 1],
        "abs_diff": 0.5,
        "reference": 0.0,
        "candidate": -0.5,
    }
    assert result.figures["violations"] == 3
    assert result.figures["elements"] == 20


def test_label_agreement_rows_without_a_label_on_both_sides_do_not_agree(run):
    ref = one_hot_probabilities([0, 1, 0, 1], 2)
    ref[1] = np.nan
    result = run(label_agreement, ref, ref.copy(), task="binary", check={"profile": "strict"})
    # Row 1 has no predicted label on either backend: it cannot have "the same predicted label".
    assert result.details["confusion_matrix"][2][2] == 1
    assert result.figures["agreement"] == 0.75
    assert result.status == "failed"
