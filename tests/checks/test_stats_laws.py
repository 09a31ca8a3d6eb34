"""Laws of DiffStats: batch-split invariance, merge algebra, quantile bounds, worst ties; and
of reduce_rows: numpy's reduction along rows, faster over a few columns."""

from __future__ import annotations

import math
from functools import reduce
from itertools import pairwise

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parityspec.checks.batching import diff_stats
from parityspec.stats import (
    PLOT_EDGES,
    QUANTILE_REL_ERROR,
    DiffStats,
    ExactSum,
    Worst,
    bin_keys,
    bin_upper,
    reduce_rows,
    shown,
)

SETTINGS = settings(max_examples=80, deadline=None)
# NaN and Inf inputs make numpy warn inside DiffStats.update; the values are what is tested.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
UPPER = 1 + QUANTILE_REL_ERROR
TINY = float(np.finfo(np.float64).tiny)  # the smallest normal float64
LARGEST = float(np.finfo(np.float64).max)

# |diff| at every magnitude a float64 takes: subnormals, the normal/subnormal boundary, the
# old histogram's range [1e-12, 1e6] and far outside it, the largest float, exact zeros.
MAGNITUDE = st.one_of(
    st.just(0.0),
    st.sampled_from([5e-324, 1e-320, float(np.nextafter(TINY, 0)), TINY, 1e-300, 1e300]),
    st.sampled_from([1e-16, 1e-12, 1.0, 1e6, 1e12, LARGEST]),
    st.floats(0, LARGEST, allow_subnormal=True),
    st.floats(-1074, 1023).map(lambda e: 2.0**e),
)
SIGNED = st.one_of(MAGNITUDE, MAGNITUDE.map(lambda v: -v))

# Few distinct values, so ties and exact zeros are common; plus NaN and +-Inf; plus any
# magnitude (a huge pair's difference can overflow to an infinite |diff|).
ELEMENT = st.one_of(
    st.sampled_from([0.0, 0.5, 1.0, -2.0]),
    st.floats(-1e3, 1e3, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf]),
    SIGNED,
)
FINITE = st.one_of(st.sampled_from([0.0, 0.25, -1.0]), st.floats(-1e3, 1e3))


@st.composite
def pairs(draw, element=ELEMENT):
    """(ref, other) of one shape: (n,) or (n, m), n >= 1."""
    n = draw(st.integers(1, 30))
    shape = draw(st.sampled_from([(n,), (n, 1), (n, 3)]))
    ref = draw(hnp.arrays(np.float64, shape, elements=element))
    other = draw(hnp.arrays(np.float64, shape, elements=element))
    return ref, other


@st.composite
def pairs_and_cuts(draw, element=ELEMENT):
    ref, other = draw(pairs(element))
    n = len(ref)
    inner = draw(st.lists(st.integers(1, n - 1), unique=True)) if n > 1 else []
    return ref, other, [0, *sorted(inner), n]


def stats_of(ref, other, k, first_index=0) -> DiffStats:
    stats = DiffStats(k=k)
    stats.update(ref, other, first_index=first_index)
    return stats


def chunk_stats(ref, other, cuts, k) -> list[DiffStats]:
    return [stats_of(ref[a:b], other[a:b], k, first_index=a) for a, b in pairwise(cuts)]


def assert_exact_equal(a: DiffStats, b: DiffStats) -> None:
    assert a.count == b.count
    assert a.nonfinite_ref == b.nonfinite_ref
    assert a.nonfinite_other == b.nonfinite_other
    assert a.max_abs == b.max_abs
    assert a.max_rel == b.max_rel
    # Sums are exact: the mean is the same bits however rows were split or merged.
    assert a.sum_abs == b.sum_abs
    assert math.copysign(1, a.mean_abs) == math.copysign(1, b.mean_abs)
    assert a.mean_abs == b.mean_abs or (math.isnan(a.mean_abs) and math.isnan(b.mean_abs))
    np.testing.assert_array_equal(a.hist, b.hist)
    np.testing.assert_array_equal(a.rel_hist, b.rel_hist)
    np.testing.assert_array_equal(a.worst.indices, b.worst.indices)
    np.testing.assert_array_equal(a.worst.values, b.worst.values)


def snapshot(stats: DiffStats) -> tuple:
    return (
        stats.count,
        stats.nonfinite,
        stats.sum_abs.units,
        stats.max_abs,
        stats.hist.copy(),
        stats.worst.values.copy(),
        stats.worst.indices.copy(),
    )


# --- batch splits --------------------------------------------------------------------------


@SETTINGS
@given(pairs_and_cuts(), st.integers(0, 6))
def test_merged_batches_equal_unbatched(case, k):
    ref, other, cuts = case
    whole = stats_of(ref, other, k)
    merged = reduce(DiffStats.merge, chunk_stats(ref, other, cuts, k))
    assert_exact_equal(merged, whole)


@SETTINGS
@given(pairs_and_cuts(), st.integers(0, 6))
def test_sequential_updates_equal_unbatched(case, k):
    ref, other, cuts = case
    whole = stats_of(ref, other, k)
    running = DiffStats(k=k)
    for a, b in pairwise(cuts):
        running.update(ref[a:b], other[a:b], first_index=a)
    assert_exact_equal(running, whole)


@SETTINGS
@given(pairs(), st.integers(1, 12), st.integers(0, 6))
def test_diff_stats_any_batch_size_equals_unbatched(pair, batch_size, k):
    ref, other = pair
    whole = stats_of(ref, other, k)
    batched = diff_stats(ref, other, batch_size, k)
    assert_exact_equal(batched, whole)


def test_update_with_an_empty_batch_is_a_no_op():
    stats = DiffStats(k=3)
    stats.update(np.empty(0), np.empty(0), first_index=0)
    assert stats.count == 0 and stats.worst.indices.size == 0


# --- exact sums ----------------------------------------------------------------------------

FINITE_ANY = st.one_of(SIGNED, st.floats(allow_nan=False, allow_infinity=False))


@SETTINGS
@given(st.lists(FINITE_ANY, max_size=40), st.data())
def test_exact_sum_is_the_correctly_rounded_sum_under_any_split(values, data):
    """ExactSum rounds once: it equals math.fsum (correctly rounded) whenever fsum's own
    intermediate sums do not overflow, whatever the split into shards and their order."""
    array = np.array(values, dtype=np.float64)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(array)), max_size=5)))
    shards = [array[a:b] for a, b in pairwise([0, *cuts, len(array)])]
    order = data.draw(st.permutations(range(len(shards))))
    parts = []
    for shard in shards:
        part = ExactSum()
        part.add(shard)
        parts.append(part)
    merged = reduce(ExactSum.merge, [parts[i] for i in order], ExactSum())
    whole = ExactSum()
    whole.add(array)
    assert merged == whole
    try:
        expected = math.fsum(values)
    except OverflowError:
        return
    assert whole.value == expected or (math.isinf(expected) and math.isinf(whole.value))


def test_exact_sum_follows_ieee_for_infinities_and_nan():
    def total(*values: float) -> float:
        exact = ExactSum()
        exact.add(np.array(values))
        return exact.value

    assert total(1.0, math.inf) == math.inf
    assert total(-math.inf, 2.0) == -math.inf
    assert math.isnan(total(math.inf, -math.inf))
    assert math.isnan(total(1.0, math.nan))
    assert total(5e-324, 5e-324) == 1e-323  # subnormals add exactly
    assert total(1e308, 1e308, -1e308) == 1e308  # no intermediate overflow


# --- merge algebra -------------------------------------------------------------------------


@st.composite
def three_chunks(draw):
    ref, other = draw(pairs(ELEMENT))
    n = len(ref)
    i = draw(st.integers(0, n))
    j = draw(st.integers(i, n))
    k = draw(st.integers(0, 6))
    parts = [(0, i), (i, j), (j, n)]
    stats = []
    for a, b in parts:
        s = DiffStats(k=k)
        if b > a:
            s.update(ref[a:b], other[a:b], first_index=a)
        stats.append(s)
    return stats


@SETTINGS
@given(three_chunks())
def test_merge_is_associative_and_commutative(chunks):
    a, b, c = chunks
    assert_exact_equal(a.merge(b).merge(c), a.merge(b.merge(c)))
    assert_exact_equal(a.merge(b), b.merge(a))
    assert_exact_equal(a.merge(b).merge(c), c.merge(a).merge(b))


@SETTINGS
@given(three_chunks())
def test_merge_with_empty_is_identity_and_leaves_operands_alone(chunks):
    a, b, _ = chunks
    before_a, before_b = snapshot(a), snapshot(b)
    assert_exact_equal(a.merge(DiffStats(k=a.k)), a)
    assert_exact_equal(DiffStats(k=a.k).merge(a), a)
    a.merge(b)
    for x, y in zip(before_a + before_b, snapshot(a) + snapshot(b), strict=True):
        np.testing.assert_array_equal(x, y)


# --- quantiles -----------------------------------------------------------------------------

QS = st.one_of(st.sampled_from([0.0, 0.01, 0.5, 0.9, 0.99, 1.0]), st.floats(0, 1))
VALUES = hnp.arrays(np.float64, st.integers(1, 60), elements=MAGNITUDE)


def abs_diff_stats(values: np.ndarray) -> DiffStats:
    """Stats whose |diff| are exactly `values` (ref 0, other = values)."""
    return stats_of(np.zeros_like(values), values, k=1)


def assert_tight_upper_bound(estimate: float, true: float) -> None:
    """true <= estimate <= true * (1 + QUANTILE_REL_ERROR), and 0 exactly when true is 0."""
    assert estimate >= true
    if true == 0.0:
        assert estimate == 0.0
    else:
        assert estimate <= true * UPPER


@SETTINGS
@given(MAGNITUDE, MAGNITUDE)
def test_bins_are_ordered_and_their_upper_end_bounds_every_value_in_them(x, y):
    low, high = sorted([x, y])
    keys = bin_keys(np.array([low, high]))
    assert keys[0] <= keys[1]
    for value, upper in zip((low, high), bin_upper(keys), strict=True):
        assert_tight_upper_bound(float(upper), value)


@SETTINGS
@given(VALUES, QS)
def test_quantile_is_a_tight_upper_bound_at_every_magnitude(values, q):
    true = float(np.quantile(values, q, method="inverted_cdf"))
    assert_tight_upper_bound(abs_diff_stats(values).quantile(q), true)


@SETTINGS
@given(hnp.arrays(np.float64, st.integers(1, 40), elements=SIGNED), VALUES, QS)
def test_relative_quantile_is_a_tight_upper_bound(ref, diffs, q):
    ref = np.resize(ref, diffs.shape)
    other = ref + np.where(ref >= 0, diffs, -diffs)
    finite = np.isfinite(other)  # a huge reference plus a huge difference can overflow
    ref, other = ref[finite], other[finite]
    if not len(ref):
        return
    stats = stats_of(ref, other, k=1)
    # What float64 makes of |diff| / |ref|; a difference against an exact 0 is infinite.
    diff, denom = np.abs(ref - other), np.abs(ref)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        relative = np.where(denom > 0, diff / denom, np.where(diff > 0, np.inf, 0.0))
    true = float(np.quantile(relative, q, method="inverted_cdf"))
    assert_tight_upper_bound(stats.rel_quantile(q), true)


@SETTINGS
@given(VALUES, QS, QS)
def test_quantile_is_monotone_in_q(values, q1, q2):
    stats = abs_diff_stats(values)
    low, high = sorted([q1, q2])
    assert stats.quantile(low) <= stats.quantile(high)
    assert stats.quantile(0.0) <= stats.quantile(low)
    assert stats.quantile(high) <= stats.quantile(1.0)


@SETTINGS
@given(VALUES)
def test_quantile_one_bounds_max_and_zero_quantile_bounds_min(values):
    stats = abs_diff_stats(values)
    assert_tight_upper_bound(stats.quantile(1.0), float(values.max()))
    assert_tight_upper_bound(stats.quantile(0.0), float(values.min()))


@pytest.mark.parametrize("scale", [1e-300, 1e-16, 1e-13, 1e9, 1e300])
def test_p99_far_outside_the_old_histogram_range(scale):
    # The old histogram put everything below 1e-12 in its lowest bin and above 1e6 in an
    # overflow bin read as inf: a float64 export's p99 came out 17x too high.
    values = scale * np.linspace(1.0, 2.0, 1000)
    true = float(np.quantile(values, 0.99, method="inverted_cdf"))
    assert_tight_upper_bound(abs_diff_stats(values).quantile(0.99), true)


def test_infinite_differences_give_an_infinite_quantile():
    # Two finite values whose difference overflows: the difference is infinite.
    stats = stats_of(np.array([-LARGEST, 0.0, 0.0]), np.array([LARGEST, 1.0, 2.0]), k=1)
    assert stats.count == 3 and stats.nonfinite == 0
    assert stats.quantile(1.0) == math.inf
    assert stats.quantile(0.5) == 2.0


def test_quantile_of_nothing_is_zero_and_all_zeros_is_zero():
    assert DiffStats().quantile(0.99) == 0.0
    assert abs_diff_stats(np.zeros(7)).quantile(1.0) == 0.0
    only_nonfinite = stats_of(np.array([np.nan, 1.0]), np.array([1.0, np.inf]), k=2)
    assert only_nonfinite.count == 0
    assert only_nonfinite.quantile(0.5) == 0.0


@SETTINGS
@given(VALUES)
def test_histogram_counts_every_finite_diff_once_in_its_bin(values):
    stats = abs_diff_stats(values)
    assert int(stats.hist[1].sum()) == int(stats.rel_hist[1].sum()) == stats.count
    bins = stats.histogram()
    assert sum(c for _, c in bins) == len(values)
    assert bins == sorted(bins)
    edges = [0.0, *PLOT_EDGES.tolist(), math.inf]
    for upper, count in bins:
        lower = edges[edges.index(upper) - 1] if upper > 0 else -1.0
        assert count == int(((values > lower) & (values <= upper)).sum())


# --- worst samples -------------------------------------------------------------------------


@SETTINGS
@given(
    hnp.arrays(np.float64, st.integers(1, 30), elements=st.sampled_from([0.0, 1.0, 2.0, 3.0])),
    st.integers(0, 8),
    st.data(),
)
def test_worst_keeps_ties_by_lowest_index(values, k, data):
    n = len(values)
    expected = sorted(range(n), key=lambda i: (-values[i], i))[:k]
    whole = stats_of(np.zeros(n), values, k)
    assert whole.worst.indices.tolist() == expected
    assert whole.worst.values.tolist() == [values[i] for i in expected]
    # The same from chunks merged in any order.
    cut = data.draw(st.integers(1, n)) if n > 1 else 1
    low = stats_of(np.zeros(cut), values[:cut], k)
    high = stats_of(np.zeros(n - cut), values[cut:], k, first_index=cut) if cut < n else None
    if high is not None:
        assert high.merge(low).worst.indices.tolist() == expected
        assert low.merge(high).worst.indices.tolist() == expected


def test_worst_direct_ties_across_updates_and_merges():
    worst = Worst(2)
    worst.update(np.array([5.0, 5.0]), np.array([7, 3]))
    worst.update(np.array([5.0]), np.array([1]))
    assert worst.indices.tolist() == [1, 3]
    other = Worst(2, np.array([5.0]), np.array([0]))
    assert worst.merge(other).indices.tolist() == [0, 1]
    assert other.merge(worst).indices.tolist() == [0, 1]


def test_worst_ranks_a_sample_by_its_largest_element():
    ref = np.zeros((3, 2))
    other = np.array([[0.1, 0.9], [0.5, 0.5], [1.0, 0.0]])
    stats = stats_of(ref, other, k=3)
    assert stats.worst.indices.tolist() == [2, 0, 1]
    assert stats.worst.values.tolist() == [1.0, 0.9, 0.5]


# --- non-finite values ---------------------------------------------------------------------


@SETTINGS
@given(pairs(ELEMENT), st.integers(1, 6))
def test_nonfinite_counted_on_its_side_and_never_in_max_abs(pair, k):
    ref, other = pair
    stats = stats_of(ref, other, k)
    finite = np.isfinite(ref) & np.isfinite(other)
    assert stats.nonfinite_ref == int((~np.isfinite(ref)).sum())
    assert stats.nonfinite_other == int((~np.isfinite(other)).sum())
    assert stats.nonfinite == stats.nonfinite_ref + stats.nonfinite_other
    assert stats.count == int(finite.sum()) == int(stats.hist[1].sum())
    with np.errstate(over="ignore"):  # two huge finite values can differ by more than a float
        expected_max = float(np.abs(ref - other)[finite].max()) if finite.any() else 0.0
    assert stats.max_abs == expected_max
    if math.isfinite(expected_max):
        assert math.isfinite(stats.max_abs)
    # A sample with a non-finite element is ranked as an infinite difference (as is one
    # whose finite elements differ by more than a float holds).
    bad_rows = ~finite.reshape(len(ref), -1).all(axis=1)
    with np.errstate(over="ignore"):
        overflow = (np.isinf(np.abs(ref - other)) & finite).reshape(len(ref), -1).any(axis=1)
    for value, index in zip(stats.worst.values, stats.worst.indices, strict=True):
        assert (value == math.inf) == bool(bad_rows[index] or overflow[index])
    infinite_rows = int((bad_rows | overflow).sum())
    assert int((stats.worst.values == math.inf).sum()) == min(k, infinite_rows)


def test_nonfinite_sides_are_not_swapped():
    ref = np.array([np.nan, 1.0, np.inf, 0.0])
    other = np.array([0.0, -np.inf, 2.0, 0.5])
    stats = stats_of(ref, other, k=4)
    assert (stats.nonfinite_ref, stats.nonfinite_other) == (2, 1)
    assert stats.count == 1
    assert stats.max_abs == 0.5
    assert stats.max_rel == math.inf  # 0.5 off a reference of 0
    assert stats.worst.indices.tolist() == [0, 1, 2, 3]
    assert stats.worst.values.tolist() == [math.inf, math.inf, math.inf, 0.5]


@SETTINGS
@given(pairs(FINITE))
def test_max_rel_is_diff_over_abs_reference(pair):
    ref, other = pair
    stats = stats_of(ref, other, k=1)
    diff = np.abs(ref - other)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(diff == 0, 0.0, diff / np.abs(ref))
    assert stats.max_rel == float(rel.max())


# --- row reductions ------------------------------------------------------------------------


@SETTINGS
@given(hnp.arrays(np.float64, st.tuples(st.integers(0, 20), st.integers(0, 40)), elements=ELEMENT))
def test_reduce_rows_is_numpys_reduction_along_rows(values):
    np.testing.assert_array_equal(
        reduce_rows(np.logical_and, np.isfinite(values)), np.isfinite(values).all(axis=1)
    )
    if values.shape[1]:
        np.testing.assert_array_equal(reduce_rows(np.maximum, values), values.max(axis=1))


@SETTINGS
@given(FINITE_ANY, FINITE_ANY)
def test_a_shown_figure_stands_on_its_limits_side(value, limit):
    """Reasons show 4 significant digits, or more where 4 would cross or meet the limit."""
    text = shown(value, limit)
    assert (float(text) > limit, float(text) == limit) == (value > limit, value == limit)
    four = f"{value:.4g}"
    if (float(four) > limit, float(four) == limit) == (value > limit, value == limit):
        assert text == four  # more digits only where four would mislead
