"""The fast statistics report exactly what the previous ones did (tests/checks/stats_oracle.py):
the same bins, counts, sums, maxima, quantiles, histogram and worst samples in the same
order, for any floats (0, subnormals, huge values, NaN, Inf), batch sizes and merges; and the
checks built on them the same figures. Sums (and so means) are the exception: they are exact
now (test_stats_laws), the previous ones were rounded batch by batch, so they agree closely,
not bit for bit."""

from __future__ import annotations

import math
from functools import reduce
from itertools import pairwise

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parityspec.checks import label_agreement, output_parity, probability_parity, threshold_flips
from parityspec.stats import PLOT_EDGES, DiffStats, Worst, bin_keys, plot_keys
from tests.checks import stats_oracle as oracle

SETTINGS = settings(max_examples=150, deadline=None)
# NaN and Inf inputs make numpy warn, in the oracle too; the values are what is tested.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
TINY = float(np.finfo(np.float64).tiny)
LARGEST = float(np.finfo(np.float64).max)
QS = [0.0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0]

# Every kind of float64 a difference or a ratio takes, >= 0.
MAGNITUDE = st.one_of(
    st.sampled_from([0.0, 5e-324, 1e-320, float(np.nextafter(TINY, 0)), TINY, LARGEST, math.inf]),
    st.floats(0, LARGEST, allow_subnormal=True),
    st.floats(-1074, 1023).map(lambda e: 2.0**e),
    st.sampled_from(PLOT_EDGES.tolist()).flatmap(
        lambda edge: st.sampled_from([edge, np.nextafter(edge, 0), np.nextafter(edge, math.inf)])
    ),
)
# Outputs: ties and exact zeros, probabilities, any magnitude either sign, NaN and +-Inf.
ELEMENT = st.one_of(
    st.sampled_from([0.0, -0.0, 0.5, 1.0, -2.0, 1e-7]),
    st.floats(0, 1),
    st.sampled_from([math.nan, math.inf, -math.inf]),
    MAGNITUDE,
    MAGNITUDE.map(lambda v: -v),
)


@st.composite
def pairs(draw):
    """(ref, other) of one shape, either of them float32 at times, and batch cuts."""
    n = draw(st.integers(1, 40))
    shape = draw(st.sampled_from([(n,), (n, 1), (n, 2), (n, 3), (n, 20)]))
    ref = draw(hnp.arrays(np.float64, shape, elements=ELEMENT))
    other = draw(hnp.arrays(np.float64, shape, elements=ELEMENT))
    with np.errstate(over="ignore"):
        if draw(st.booleans()):
            other = other.astype(np.float32)
        if draw(st.booleans()):
            ref = ref.astype(np.float32)
    inner = draw(st.lists(st.integers(1, n - 1), unique=True)) if n > 1 else []
    return ref, other, [0, *sorted(inner), n]


def update(stats, ref, other, cuts):
    for a, b in pairwise(cuts):
        stats.update(ref[a:b], other[a:b], first_index=a)
    return stats


def assert_close_sum(exact: float, rounded: float) -> None:
    if math.isfinite(rounded):
        assert exact == pytest.approx(rounded, rel=1e-12, abs=1e-300)
    else:  # the old running sum overflowed where the exact one may not
        assert math.isinf(exact) or exact > 1e300


def assert_same(new: DiffStats, old: oracle.DiffStats) -> None:
    for name in (
        "count",
        "nonfinite_ref",
        "nonfinite_other",
        "nonfinite_rows_ref",
        "nonfinite_rows_other",
        "max_abs",
        "max_rel",
    ):
        assert repr(getattr(new, name)) == repr(getattr(old, name)), name  # bit for bit
    assert_close_sum(new.sum_abs.value, old.sum_abs)
    assert_close_sum(new.mean_abs, old.mean_abs)
    np.testing.assert_array_equal(new.hist, old.hist)
    np.testing.assert_array_equal(new.rel_hist, old.rel_hist)
    assert new.histogram() == old.histogram()
    assert [new.quantile(q) for q in QS] == [old.quantile(q) for q in QS]
    assert [new.rel_quantile(q) for q in QS] == [old.rel_quantile(q) for q in QS]
    assert new.worst.indices.tolist() == old.worst.indices.tolist()
    assert new.worst.values.tolist() == old.worst.values.tolist()
    assert new.worst.indices.dtype == old.worst.indices.dtype


@SETTINGS
@given(pairs(), st.integers(0, 7))
def test_every_figure_equals_the_previous_implementations(case, k):
    ref, other, cuts = case
    assert_same(update(DiffStats(k=k), ref, other, cuts), update(oracle.DiffStats(k=k), *case))


@SETTINGS
@given(pairs(), st.integers(0, 7))
def test_merged_figures_equal_the_previous_implementations(case, k):
    ref, other, cuts = case
    new = [update(DiffStats(k=k), ref, other, [a, b]) for a, b in pairwise(cuts)]
    old = [update(oracle.DiffStats(k=k), ref, other, [a, b]) for a, b in pairwise(cuts)]
    assert_same(reduce(DiffStats.merge, new), reduce(oracle.DiffStats.merge, old))
    assert_same(reduce(DiffStats.merge, new[::-1]), reduce(oracle.DiffStats.merge, old[::-1]))


@SETTINGS
@given(hnp.arrays(np.float64, st.integers(0, 80), elements=MAGNITUDE))
def test_bins_equal_the_previous_ones(values):
    np.testing.assert_array_equal(bin_keys(values), oracle.bin_keys(values))
    np.testing.assert_array_equal(plot_keys(values), previous_plot_keys(values))


def previous_plot_keys(values: np.ndarray) -> np.ndarray:
    """The bins the previous histogram counted a value in: a search of PLOT_EDGES."""
    keys = np.searchsorted(PLOT_EDGES, values, side="left")
    keys[values == 0] = -1
    keys[values == math.inf] = len(PLOT_EDGES)
    return keys


def test_plot_bins_equal_the_previous_ones_at_and_around_every_edge():
    edges = np.unique(PLOT_EDGES)
    spread = [edges, np.nextafter(edges, 0), np.nextafter(edges, math.inf)]
    spread += [np.sqrt(edges[:-1] * edges[1:]), edges * (1 + 2**-40), edges * (1 - 2**-40)]
    subnormals = np.arange(0, 64) * 5e-324
    values = np.concatenate([*spread, subnormals, [0.0, TINY, LARGEST, math.inf]])
    values = values[(values >= 0) & ~np.isnan(values)]
    np.testing.assert_array_equal(plot_keys(values), previous_plot_keys(values))
    np.testing.assert_array_equal(bin_keys(values), oracle.bin_keys(values))


@SETTINGS
@given(
    st.lists(
        st.tuples(
            hnp.arrays(
                np.float64,
                st.integers(0, 30),
                elements=st.one_of(st.sampled_from([0.0, 1.0, 2.0, math.inf, math.nan]), MAGNITUDE),
            ),
            st.integers(0, 1000),
        ),
        min_size=1,
        max_size=4,
    ),
    st.integers(0, 8),
)
def test_worst_keeps_what_the_previous_one_kept(batches, k):
    """Ties, NaN and any index order: the same samples, in the same order."""
    new, old = Worst(k), oracle.Worst(k)
    for values, seed in batches:
        indices = np.random.default_rng(seed).permutation(len(values)) + seed
        new.update(values, indices)
        old.update(values, indices)
        assert new.indices.tolist() == old.indices.tolist()
        np.testing.assert_array_equal(new.values, old.values)


# --- the checks ----------------------------------------------------------------------------

PROBABILITY = st.one_of(
    st.sampled_from([0.0, 0.5, 1.0, 0.25, math.nan, math.inf, -math.inf]), st.floats(0, 1)
)


@st.composite
def probabilities(draw, columns=(2, 4)):
    n, m = draw(st.integers(1, 40)), draw(st.integers(*columns))
    ref = draw(hnp.arrays(np.float64, (n, m), elements=PROBABILITY))
    other = draw(hnp.arrays(np.float64, (n, m), elements=PROBABILITY))
    return ref, other.astype(np.float32) if draw(st.booleans()) else other


@SETTINGS
@given(probabilities(), st.integers(1, 9), st.sampled_from([0.0, 0.04, 0.3]))
def test_probability_parity_counts_samples_over_as_before(run, case, batch_size, abs_tol):
    ref, other = case
    result = run(
        probability_parity, ref, other, tolerances={"abs_tol": abs_tol}, batch_size=batch_size
    )
    assert result.figures["samples_over_abs_tol"] == oracle.count_samples_over(ref, other, abs_tol)
    old = update(oracle.DiffStats(k=5), ref, other, [*range(0, len(ref), batch_size), len(ref)])
    assert result.figures["max_abs_diff"] == old.max_abs
    assert_close_sum(result.figures["mean_abs_diff"], old.mean_abs)
    assert result.figures["p99_abs_diff"] == old.quantile(0.99)
    assert result.details["histogram"] == old.histogram()
    assert [s["row"] for s in result.details["worst_samples"]] == old.worst.indices.tolist()


@SETTINGS
@given(probabilities(), st.integers(1, 9), st.integers(0, 6))
def test_label_agreement_counts_and_lists_as_before(run, case, batch_size, shown):
    ref, other = case
    result = run(label_agreement, ref, other, batch_size=batch_size, worst_samples=shown)
    n = ref.shape[1]
    assert (
        result.details["confusion_matrix"] == oracle.confusion(ref, other, n, batch_size).tolist()
    )
    assert result.details["disagreeing_rows"] == oracle.disagreeing_rows(ref, other, shown)


@SETTINGS
@given(
    probabilities((2, 2)),
    st.integers(1, 9),
    st.integers(0, 6),
    st.sampled_from([0.25, 0.5, 0.9]),
)
def test_threshold_flips_count_and_list_as_before(run, case, batch_size, shown, threshold):
    ref, other = case
    result = run(
        threshold_flips,
        ref,
        other,
        batch_size=batch_size,
        worst_samples=shown,
        threshold=threshold,
    )
    margin = result.tolerances["flip_margin"]
    flipped, near, flips_near, _, _, rows = oracle.flips(
        ref, other, threshold, margin, batch_size, shown
    )
    figures = result.figures
    assert (figures["flips"], figures["near_threshold"], figures["flips_near_threshold"]) == (
        flipped,
        near,
        flips_near,
    )
    shown_rows = [
        (r["row"], r["reference"], r["candidate"]) for r in result.details["flipped_rows"]
    ]
    assert repr(shown_rows) == repr([(row, float(a), float(b)) for row, a, b in rows])


@SETTINGS
@given(pairs(), st.integers(1, 9), st.sampled_from([(0.0, 0.0), (1e-5, 1e-4), (0.5, 0.0)]))
def test_output_parity_counts_violations_and_worst_elements_as_before(
    run, case, batch_size, tolerances
):
    ref, other, _ = case
    atol, rtol = tolerances
    result = run(
        output_parity,
        ref,
        other,
        task="tensor",
        tolerances={"atol": atol, "rtol": rtol},
        batch_size=batch_size,
    )
    violations, worst = oracle.output_elements(ref, other, atol, rtol, batch_size, 5)
    assert result.figures["violations"] == violations
    positions = result.details["worst_positions"]
    assert [p["abs_diff"] for p in positions] == worst.values.tolist()
    flat = [int(np.ravel_multi_index(p["position"], ref.shape)) for p in positions]
    assert flat == worst.indices.tolist()
