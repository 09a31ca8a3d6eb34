"""Laws every comparator obeys: identity passes, looser never fails, NaN always fails."""

from __future__ import annotations

import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parityspec.checks import label_agreement, output_parity, probability_parity, threshold_flips

SETTINGS = settings(max_examples=40, deadline=None)
# NaN and Inf inputs make numpy warn inside the checks; the verdicts are what is tested.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

ANY_FINITE = st.floats(allow_nan=False, allow_infinity=False)
NONFINITE = st.sampled_from([math.nan, math.inf, -math.inf])
NOISE = st.sampled_from([0.0, 0.0, 0.0, 1e-7, -1e-4, 1e-3, -0.02, 0.05, -0.3])


def arrays(shape, elements=ANY_FINITE, dtype=np.float64):
    return hnp.arrays(dtype, shape, elements=elements)


@st.composite
def prob_shapes(draw, min_classes=2, max_classes=4):
    return (draw(st.integers(1, 25)), draw(st.integers(min_classes, max_classes)))


@st.composite
def tensor_shapes(draw):
    n = draw(st.integers(1, 20))
    return draw(st.sampled_from([(n,), (n, 3), (n, 2, 2)]))


@st.composite
def near_pair(draw, shape_strategy, elements):
    """A reference and a candidate that equals it up to sparse, mixed-size noise."""
    shape = draw(shape_strategy)
    ref = draw(arrays(shape, elements))
    noise = draw(arrays(shape, NOISE))
    return ref, ref + noise


PROBS = st.floats(0, 1)
NEAR_HALF = st.floats(0.4, 0.6)
VALUES = st.floats(-100, 100)
TOL = st.one_of(st.sampled_from([0.0, 1e-6, 1e-3, 0.01, 0.02, 0.05, 0.1, 0.5]), st.floats(0, 1))
FRACTION = st.one_of(st.sampled_from([0.0, 0.05, 0.1, 0.5, 1.0]), st.floats(0, 1))


@st.composite
def loosened(draw, fields: dict[str, st.SearchStrategy], upper: dict[str, float]):
    """Two tolerance dicts: `tight`, and `loose` at least as permissive in every field."""
    tight, loose = {}, {}
    for name, strategy in fields.items():
        t = draw(strategy)
        widen = draw(st.one_of(st.just(0.0), TOL))
        if name == "min_label_agreement":  # looser means lower
            tight[name], loose[name] = t, max(t - widen, 0.0)
        else:
            tight[name], loose[name] = t, min(t + widen, upper.get(name, math.inf))
    return tight, loose


# (module, task, inputs near each other, tolerance fields and their strategies)
CASES = {
    "probability_parity": (
        probability_parity,
        "binary",
        near_pair(prob_shapes(), PROBS),
        {"abs_tol": TOL, "mean_tol": TOL},
    ),
    "output_parity": (
        output_parity,
        "tensor",
        near_pair(tensor_shapes(), VALUES),
        {"atol": TOL, "rtol": TOL, "max_violation_fraction": FRACTION},
    ),
    "label_agreement": (
        label_agreement,
        "multiclass",
        near_pair(prob_shapes(2, 3), NEAR_HALF),
        {"min_label_agreement": FRACTION},
    ),
    "threshold_flips": (
        threshold_flips,
        "binary",
        near_pair(prob_shapes(2, 2), NEAR_HALF),
        {"max_flip_rate": FRACTION, "flip_margin": TOL},
    ),
}
FRACTION_FIELDS = {"max_violation_fraction": 1.0, "max_flip_rate": 1.0, "min_label_agreement": 1.0}
STRICTEST = {
    "probability_parity": {"abs_tol": 0.0, "mean_tol": 0.0},
    "output_parity": {"atol": 0.0, "rtol": 0.0, "max_violation_fraction": 0.0},
    "label_agreement": {"min_label_agreement": 1.0},
    "threshold_flips": {"max_flip_rate": 0.0, "flip_margin": 0.0},
}
HUGE = {
    "abs_tol": 1e300,
    "mean_tol": 1e300,
    "atol": 1e300,
    "rtol": 1e300,
    "max_violation_fraction": 1.0,
}


# --- comparing an output with itself -------------------------------------------------------


@st.composite
def identical(draw, kind):
    if kind in ("probability_parity", "label_agreement"):
        shape = draw(prob_shapes())
    elif kind == "threshold_flips":
        shape = draw(prob_shapes(2, 2))
    else:
        shape = draw(tensor_shapes())
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    elements = st.floats(
        allow_nan=False, allow_infinity=False, width=32 if dtype is np.float32 else 64
    )
    return draw(arrays(shape, elements, dtype))


@pytest.mark.parametrize("kind", list(CASES))
@SETTINGS
@given(data=st.data())
def test_output_compared_with_itself_passes_with_zero_diff(run, kind, data):
    module, task = CASES[kind][:2]
    ref = data.draw(identical(kind))
    result = run(module, ref, ref.copy(), task=task, tolerances=STRICTEST[kind])
    assert result.status == "passed", result.reason
    assert all(g.ok for g in result.gates)
    figures = result.figures
    if kind in ("probability_parity", "output_parity"):
        assert figures["max_abs_diff"] == 0.0
        assert figures["mean_abs_diff"] == 0.0
        assert figures["max_rel_diff"] == 0.0
        assert figures["nonfinite"] == 0
    if kind == "probability_parity":
        assert figures["samples_over_abs_tol"] == 0
    if kind == "output_parity":
        assert figures["violations"] == 0
    if kind == "label_agreement":
        assert figures["agreement"] == 1.0 and figures["disagreements"] == 0
        confusion = np.array(result.details["confusion_matrix"])
        assert confusion.shape == (ref.shape[1], ref.shape[1])
        assert (confusion == np.diag(np.diag(confusion))).all()
    if kind == "threshold_flips":
        assert figures["flips"] == 0 and figures["flip_rate"] == 0.0


# --- loosening a tolerance -----------------------------------------------------------------


@pytest.mark.parametrize("kind", list(CASES))
@SETTINGS
@given(data=st.data())
def test_loosening_a_tolerance_never_turns_a_pass_into_a_fail(run, kind, data):
    module, task, pair, fields = CASES[kind]
    ref, cand = data.draw(pair)
    tight, loose = data.draw(loosened(fields, FRACTION_FIELDS))
    strict = run(module, ref, cand, task=task, tolerances=tight)
    relaxed = run(module, ref, cand, task=task, tolerances=loose)
    if strict.status == "passed":
        assert relaxed.status == "passed", (tight, loose, relaxed.reason)
    # Each gated figure moves only towards its limit's safe side (output_parity's violation
    # fraction falls as atol/rtol grow; the other figures do not depend on tolerances).
    assert [g.figure for g in strict.gates] == [g.figure for g in relaxed.gates]
    for before, after in zip(strict.gates, relaxed.gates, strict=True):
        if before.op == "<=":
            assert after.value <= before.value
        else:
            assert after.value >= before.value
        if kind != "output_parity":
            assert after.value == before.value
    assert sum(not g.ok for g in relaxed.gates) <= sum(not g.ok for g in strict.gates)


@pytest.mark.parametrize("kind", list(CASES))
@SETTINGS
@given(data=st.data())
def test_gates_reflect_the_verdict(run, kind, data):
    module, task, pair, fields = CASES[kind]
    ref, cand = data.draw(pair)
    if kind in ("probability_parity", "output_parity") and data.draw(st.booleans()):
        cand = cand.copy()
        cand.flat[data.draw(st.integers(0, cand.size - 1))] = data.draw(NONFINITE)
    tolerances, _ = data.draw(loosened(fields, FRACTION_FIELDS))
    result = run(module, ref, cand, task=task, tolerances=tolerances)
    assert result.gates
    clean = result.figures.get("nonfinite", 0) == 0
    assert (result.status == "passed") == (all(g.ok for g in result.gates) and clean)
    assert bool(result) == (result.status == "passed")
    for gate in result.gates:
        assert gate.limit_value == tolerances[gate.limit]
        assert gate.figure in result.figures
        assert gate.value == result.figures[gate.figure]
        if not gate.ok:
            assert gate.describe() in result.reason


# --- NaN and Inf ---------------------------------------------------------------------------


@st.composite
def with_nonfinite(draw, shape_strategy, elements):
    ref, cand = draw(near_pair(shape_strategy, elements))
    ref, cand = ref.copy(), cand.copy()
    sides = draw(st.sampled_from(["ref", "cand", "both"]))
    for side, array in (("ref", ref), ("cand", cand)):
        if sides in (side, "both"):
            array.flat[draw(st.integers(0, array.size - 1))] = draw(NONFINITE)
    return ref, cand, sides


@SETTINGS
@given(with_nonfinite(prob_shapes(), PROBS), st.sampled_from(["huge", "check", "strict"]))
def test_nonfinite_probabilities_fail_whatever_the_tolerances(run, case, how):
    ref, cand, sides = case
    if how == "huge":
        result = run(probability_parity, ref, cand, tolerances=HUGE)
    elif how == "check":
        result = run(probability_parity, ref, cand, check={"abs_tol": 1e300, "mean_tol": 1e300})
    else:
        result = run(probability_parity, ref, cand, check={"profile": "strict"})
    assert result.status == "failed"
    assert "non-finite" in result.reason
    assert result.figures["nonfinite"] >= 1 + (sides == "both")
    assert math.isfinite(result.figures["max_abs_diff"])
    if how == "huge":
        assert all(g.ok for g in result.gates)
        # A row with a NaN or Inf is over any tolerance.
        bad_rows = ~(np.isfinite(ref) & np.isfinite(cand)).all(axis=1)
        assert result.figures["samples_over_abs_tol"] == int(bad_rows.sum())
    if sides == "ref":
        assert "in 1 row of ref" in result.reason and "of cand" not in result.reason
    if sides == "cand":
        assert "in 1 row of cand" in result.reason and "of ref" not in result.reason
    if sides == "both":
        assert "in 1 row of ref and 1 row of cand" in result.reason


@SETTINGS
@given(with_nonfinite(tensor_shapes(), VALUES), st.sampled_from(["huge", "check"]))
def test_nonfinite_outputs_fail_whatever_the_tolerances(run, case, how):
    ref, cand, _ = case
    if how == "huge":
        result = run(output_parity, ref, cand, task="tensor", tolerances=HUGE)
    else:
        fields = {"atol": 1e300, "rtol": 1e300, "max_violation_fraction": 1.0}
        result = run(output_parity, ref, cand, task="regression", check=fields)
    assert result.status == "failed"
    assert "non-finite" in result.reason
    assert result.figures["nonfinite"] >= 1


@SETTINGS
@given(with_nonfinite(tensor_shapes(), VALUES), st.booleans())
def test_nonfinite_in_one_of_several_outputs_fails(run, case, nan_first):
    ref, cand, _ = case
    clean = np.arange(len(ref), dtype=np.float64)
    names = ("a", "b") if nan_first else ("b", "a")
    result = run(
        output_parity,
        {names[0]: ref, names[1]: clean},
        {names[0]: cand, names[1]: clean.copy()},
        task="tensor",
        tolerances=HUGE,
    )
    assert result.status == "failed"
    assert f"{names[0]}: non-finite" in result.reason
    outputs = result.details["outputs"]
    assert outputs[names[0]]["passed"] is False and outputs[names[1]]["passed"] is True


# --- output_parity's element rule ----------------------------------------------------------


@st.composite
def boundary_case(draw):
    """Integers and powers of two: ref, atol + rtol*|ref| and ref +- bound are all exact."""
    ref = float(draw(st.integers(-(2**20), 2**20)))
    atol = float(draw(st.integers(0, 2**10)))
    rtol = draw(st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0]))
    # Away from zero: the candidate's next float is then exactly one ulp further off.
    sign = 1.0 if ref > 0 else -1.0 if ref < 0 else draw(st.sampled_from([1.0, -1.0]))
    bound = atol + rtol * abs(ref)
    return ref, atol, rtol, sign, bound


@SETTINGS
@given(boundary_case())
def test_element_exactly_at_the_bound_passes_and_just_above_fails(run, case):
    ref, atol, rtol, sign, bound = case
    at = ref + sign * bound
    above = float(np.nextafter(at, sign * math.inf))
    assert abs(at - ref) == bound and abs(above - ref) > bound
    tol = {"atol": atol, "rtol": rtol, "max_violation_fraction": 0.0}
    passing = run(output_parity, np.array([ref]), np.array([at]), tolerances=tol)
    failing = run(output_parity, np.array([ref]), np.array([above]), tolerances=tol)
    assert passing.status == "passed", passing.reason
    assert passing.figures["violations"] == 0
    assert failing.status == "failed"
    assert failing.figures["violations"] == 1


def test_relative_part_scales_with_the_reference_not_the_candidate(run):
    tol = {"atol": 0.0, "rtol": 0.5, "max_violation_fraction": 0.0}
    # |2 - 1| = 1 <= 0.5 * |2|: passes with 2 as the reference...
    assert run(output_parity, np.array([2.0]), np.array([1.0]), tolerances=tol).status == "passed"
    # ...and fails with 1 as the reference: 1 > 0.5 * |1|.
    assert run(output_parity, np.array([1.0]), np.array([2.0]), tolerances=tol).status == "failed"
    # |ref| of a negative reference.
    assert run(output_parity, np.array([-2.0]), np.array([-1.0]), tolerances=tol).status == "passed"


@SETTINGS
@given(near_pair(tensor_shapes(), VALUES), TOL, TOL)
def test_violations_follow_the_element_rule(run, pair, atol, rtol):
    ref, cand = pair
    tol = {"atol": atol, "rtol": rtol, "max_violation_fraction": 1.0}
    result = run(output_parity, ref, cand, task="tensor", tolerances=tol)
    expected = int((~(np.abs(ref - cand) <= atol + rtol * np.abs(ref))).sum())
    assert result.figures["violations"] == expected
    assert result.figures["elements"] == ref.size
    assert result.figures["violation_fraction"] == expected / ref.size


@SETTINGS
@given(st.integers(1, 40), st.data())
def test_max_violation_fraction_allows_exactly_that_fraction(run, n, data):
    bad = data.draw(st.integers(0, n))
    ref = np.zeros(n)
    cand = np.zeros(n)
    cand[data.draw(st.permutations(range(n)))[:bad]] = 1.0
    tol = {"atol": 0.5, "rtol": 0.0}
    allowed = run(output_parity, ref, cand, tolerances={**tol, "max_violation_fraction": bad / n})
    assert allowed.status == "passed", allowed.reason
    assert allowed.figures["violations"] == bad
    if bad:
        just_under = float(np.nextafter(bad / n, 0.0))
        refused = run(
            output_parity, ref, cand, tolerances={**tol, "max_violation_fraction": just_under}
        )
        assert refused.status == "failed"
        assert "violation_fraction" in refused.reason
        fewer = run(
            output_parity, ref, cand, tolerances={**tol, "max_violation_fraction": (bad - 1) / n}
        )
        assert fewer.status == "failed"


def test_per_output_tolerances_apply_to_that_output_only(run):
    ref = np.array([1.0, 2.0, 3.0])
    cand = ref + 0.01
    outputs_ref = {"logits": ref, "scores": ref.copy()}
    outputs_cand = {"logits": cand, "scores": cand.copy()}
    check = {"atol": 1e-6, "rtol": 0.0, "per_output": {"logits": {"atol": 0.1}}}
    result = run(output_parity, outputs_ref, outputs_cand, task="tensor", check=check)
    outputs = result.details["outputs"]
    assert outputs["logits"]["passed"] is True
    assert outputs["logits"]["tolerances"]["atol"] == 0.1
    assert outputs["scores"]["passed"] is False
    assert outputs["scores"]["tolerances"]["atol"] == 1e-6
    # Unset fields of the override keep the check's own value.
    assert outputs["logits"]["tolerances"]["rtol"] == 0.0
    assert result.status == "failed"
    assert result.reason.startswith("scores:")
    assert "logits" not in result.reason
    # An override for another name changes nothing.
    other = {"atol": 1e-6, "rtol": 0.0, "per_output": {"unused": {"atol": 1.0}}}
    result = run(output_parity, outputs_ref, outputs_cand, task="tensor", check=other)
    assert not any(r["passed"] for r in result.details["outputs"].values())
    # Loosening both passes.
    both = {"atol": 1e-6, "per_output": {"logits": {"atol": 0.1}, "scores": {"rtol": 0.01}}}
    result = run(output_parity, outputs_ref, outputs_cand, task="tensor", check=both)
    assert result.status == "passed", result.reason
    assert len(result.gates) == 2 and all(g.ok for g in result.gates)


def test_per_output_max_violation_fraction_override(run):
    ref = np.zeros(4)
    cand = np.array([0.0, 0.0, 0.0, 1.0])
    check = {"atol": 0.1, "per_output": {"y": {"max_violation_fraction": 0.25}}}
    result = run(output_parity, {"y": ref}, {"y": cand}, task="tensor", check=check)
    assert result.status == "passed", result.reason
    result = run(output_parity, {"z": ref}, {"z": cand}, task="tensor", check=check)
    assert result.status == "failed"


@pytest.mark.parametrize(
    ("tol", "candidate", "passes"),
    [
        # |1 - c| <= 0.25 + 0.25 * |1| = 0.5, above the reference.
        (0.25, 1.5, True),
        (0.25, float(np.nextafter(1.5, math.inf)), False),
        # |1 - c| <= 0.125 + 0.125 * |1| = 0.25, below it (c >= 1/2: 1 - c is exact).
        (0.125, 0.75, True),
        (0.125, float(np.nextafter(0.75, -math.inf)), False),
    ],
)
def test_element_rule_on_both_sides_of_the_reference(run, tol, candidate, passes):
    assert (abs(1.0 - candidate) <= tol + tol * 1.0) is passes
    tolerances = {"atol": tol, "rtol": tol, "max_violation_fraction": 0.0}
    result = run(output_parity, np.array([1.0]), np.array([candidate]), tolerances=tolerances)
    assert (result.status == "passed") is passes
    if not passes:
        assert f"1 of 1 elements break |diff| <= {tol:g} + {tol:g}*|ref|" in result.reason
