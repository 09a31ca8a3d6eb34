"""The statistics as they were before issue 12's fast ones (parityspec/stats.py and the
checks' per-batch loops at commit 7e0e9f7): the oracle that test_stats_equivalence.py holds
the fast code to, figure for figure. Only the docstring and the loops' section are new."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MANTISSA_BITS = 7
QUANTILE_REL_ERROR = 2.0**-MANTISSA_BITS
_SHIFT = 52 - MANTISSA_BITS
# A subnormal times 2**64 is a normal float, exactly: its key then has every mantissa bit.
_SUBNORMAL_SCALE = 64
_SUBNORMAL_OFFSET = _SUBNORMAL_SCALE << MANTISSA_BITS
_FIRST_NORMAL_KEY = (1 << MANTISSA_BITS) - 1  # the bin whose upper end is 2**-1022
_ZERO_KEY = -(1 << 31)  # below every subnormal's key
_INF_KEY = 2047 << MANTISSA_BITS  # above the largest finite float's key
_LARGEST = float(np.finfo(np.float64).max)
_EMPTY = np.zeros((2, 0), dtype=np.int64)

# The histogram drawn in reports: BINS_PER_DECADE bins per decade over the whole float64
# range, bin j holding (PLOT_EDGES[j-1], PLOT_EDGES[j]]; exact zeros and infinities apart.
BINS_PER_DECADE = 20
HIST_LOW_EXP, HIST_HIGH_EXP = -323, 308
_PLOT_STEPS = np.arange(HIST_LOW_EXP * BINS_PER_DECADE, HIST_HIGH_EXP * BINS_PER_DECADE + 1)
PLOT_EDGES = np.append(10.0 ** (_PLOT_STEPS / BINS_PER_DECADE), _LARGEST)
_PLOT_ZERO, _PLOT_INF = -1, len(PLOT_EDGES)


def bin_keys(values: np.ndarray) -> np.ndarray:
    """The quantile histogram's key of each value (float64, >= 0, finite or +inf)."""
    subnormal = (values > 0) & (values < np.finfo(np.float64).tiny)
    scaled = values.copy()
    scaled[subnormal] *= 2.0**_SUBNORMAL_SCALE
    # Minus one: a value exactly on a bin's upper end belongs to that bin, not the next.
    keys = (scaled.view(np.int64) - 1) >> _SHIFT
    keys[subnormal] -= _SUBNORMAL_OFFSET
    keys[values == 0] = _ZERO_KEY
    keys[np.isinf(values)] = _INF_KEY
    return keys


def bin_upper(keys: np.ndarray) -> np.ndarray:
    """The largest float64 in each bin: the quantile a bin stands for."""
    keys = np.asarray(keys, dtype=np.int64)
    out = np.empty(keys.shape, dtype=np.float64)
    normal = (keys >= _FIRST_NORMAL_KEY) & (keys < _INF_KEY)
    out[normal] = ((keys[normal] + 1) << _SHIFT).view(np.float64)
    out[keys == _INF_KEY - 1] = _LARGEST  # that bin's upper end, 2**1024, is not a float
    subnormal = (keys > _ZERO_KEY) & (keys < _FIRST_NORMAL_KEY)
    scaled = ((keys[subnormal] + _SUBNORMAL_OFFSET + 1) << _SHIFT).view(np.float64)
    # In units of the smallest subnormal (exact: below 2**52); floor: the largest one in the bin.
    units = np.floor(scaled * 2.0 ** (1074 - _SUBNORMAL_SCALE)).astype(np.int64)
    out[subnormal] = units.view(np.float64)
    out[keys == _ZERO_KEY] = 0.0
    out[keys == _INF_KEY] = np.inf
    return out


def _tally(keys: np.ndarray) -> np.ndarray:
    """Sorted keys as (key, count) pairs in a 2 x K array."""
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    counts = np.diff(np.append(starts, len(keys)))
    return np.stack([keys[starts], counts]).astype(np.int64)


def _add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two tallies merged into a new one; neither operand is changed."""
    if not b.shape[1]:
        return a.copy()
    if not a.shape[1]:
        return b.copy()
    unique, inverse = np.unique(np.concatenate([a[0], b[0]]), return_inverse=True)
    counts = np.zeros(len(unique), dtype=np.int64)
    np.add.at(counts, inverse, np.concatenate([a[1], b[1]]))
    return np.stack([unique, counts])


def _plot_tally(values: np.ndarray) -> np.ndarray:
    """Sorted values tallied on PLOT_EDGES: counting the values at or below each edge takes
    one search per edge in their range rather than one per value."""
    zeros = int(np.searchsorted(values, 0.0, side="right"))
    infinite = len(values) - int(np.searchsorted(values, np.inf, side="left"))
    positive = values[zeros : len(values) - infinite]
    keys, counts = [_PLOT_ZERO], [zeros]
    if positive.size:
        low, high = np.searchsorted(PLOT_EDGES, positive[[0, -1]], side="left")
        at_or_below = np.searchsorted(positive, PLOT_EDGES[low : high + 1], side="right")
        keys += range(low, high + 1)
        counts += np.diff(at_or_below, prepend=0).tolist()
    keys.append(_PLOT_INF)
    counts.append(infinite)
    tally = np.array([keys, counts], dtype=np.int64)
    return tally[:, tally[1] > 0]


def _plot_upper(key: int) -> float:
    if key == _PLOT_ZERO:
        return 0.0
    if key == _PLOT_INF:
        return float("inf")
    return float(PLOT_EDGES[key])


@dataclass
class Worst:
    """The k samples with the largest difference; ties keep the lower index."""

    k: int
    values: np.ndarray = field(default_factory=lambda: np.empty(0))
    indices: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def update(self, values: np.ndarray, indices: np.ndarray) -> None:
        self._keep(np.concatenate([self.values, values]), np.concatenate([self.indices, indices]))

    def merge(self, other: Worst) -> Worst:
        merged = Worst(self.k, self.values.copy(), self.indices.copy())
        merged.update(other.values, other.indices)
        return merged

    def _keep(self, values: np.ndarray, indices: np.ndarray) -> None:
        order = np.lexsort((indices, -values))[: self.k]
        self.values, self.indices = values[order], indices[order].astype(np.int64)


@dataclass
class DiffStats:
    """Element-wise |a - b| statistics plus per-sample worst cases."""

    k: int = 5
    count: int = 0
    nonfinite_ref: int = 0
    nonfinite_other: int = 0
    nonfinite_rows_ref: int = 0
    """Samples with at least one NaN or Inf element in the reference."""
    nonfinite_rows_other: int = 0
    sum_abs: float = 0.0
    max_abs: float = 0.0
    max_rel: float = 0.0
    hist: np.ndarray = field(default_factory=lambda: _EMPTY.copy())
    """|a - b| tallied by `bin_keys`, for quantiles."""
    rel_hist: np.ndarray = field(default_factory=lambda: _EMPTY.copy())
    """|a - b| / |a| on the same bins; a difference against an exact 0 is infinite."""
    plot_hist: np.ndarray = field(default_factory=lambda: _EMPTY.copy())
    """|a - b| tallied on PLOT_EDGES, for the report's histogram."""
    worst: Worst = field(init=False)
    """The k worst samples; `merge` sets it on the merged stats."""

    def __post_init__(self) -> None:
        self.worst = Worst(self.k)

    def update(self, ref: np.ndarray, other: np.ndarray, first_index: int = 0) -> None:
        """Add a batch: `ref` and `other` of the same shape, samples along axis 0."""
        ref = np.asarray(ref, dtype=np.float64)
        other = np.asarray(other, dtype=np.float64)
        if ref.shape != other.shape:
            raise ValueError(f"shapes differ: {ref.shape} vs {other.shape}")
        if len(ref) == 0:
            return
        finite_ref, finite_other = np.isfinite(ref), np.isfinite(other)
        self.nonfinite_ref += int((~finite_ref).sum())
        self.nonfinite_other += int((~finite_other).sum())
        self.nonfinite_rows_ref += int((~finite_ref.reshape(len(ref), -1).all(axis=1)).sum())
        self.nonfinite_rows_other += int((~finite_other.reshape(len(ref), -1).all(axis=1)).sum())
        both = finite_ref & finite_other
        with np.errstate(invalid="ignore", over="ignore"):  # non-finite elements are masked
            abs_diff = np.where(both, np.abs(ref - other), 0.0)
        # A non-finite element counts as an infinite difference for its sample.
        sample_diff = np.where(both, abs_diff, np.inf).reshape(len(ref), -1)
        self.count += int(both.sum())
        if both.any():
            finite_diff = abs_diff[both]
            self.sum_abs += float(finite_diff.sum())  # before sorting: the same rounding
            self.max_abs = max(self.max_abs, float(finite_diff.max()))
            denom = np.abs(ref[both])
            with np.errstate(over="ignore"):  # a huge ratio is an infinite one
                rel = np.divide(finite_diff, denom, out=np.zeros_like(finite_diff), where=denom > 0)
            rel[(denom == 0) & (finite_diff > 0)] = np.inf
            self.max_rel = max(self.max_rel, float(rel.max()))
            # Sorted, keys come out sorted and tallying them is one pass.
            finite_diff.sort()
            rel.sort()
            self.hist = _add(self.hist, _tally(bin_keys(finite_diff)))
            self.rel_hist = _add(self.rel_hist, _tally(bin_keys(rel)))
            self.plot_hist = _add(self.plot_hist, _plot_tally(finite_diff))
        per_sample = sample_diff.max(axis=1) if sample_diff.size else np.zeros(len(ref))
        self.worst.update(per_sample, np.arange(first_index, first_index + len(ref)))

    def merge(self, other: DiffStats) -> DiffStats:
        merged = DiffStats(
            k=self.k,
            count=self.count + other.count,
            nonfinite_ref=self.nonfinite_ref + other.nonfinite_ref,
            nonfinite_other=self.nonfinite_other + other.nonfinite_other,
            nonfinite_rows_ref=self.nonfinite_rows_ref + other.nonfinite_rows_ref,
            nonfinite_rows_other=self.nonfinite_rows_other + other.nonfinite_rows_other,
            sum_abs=self.sum_abs + other.sum_abs,
            max_abs=max(self.max_abs, other.max_abs),
            max_rel=max(self.max_rel, other.max_rel),
            hist=_add(self.hist, other.hist),
            rel_hist=_add(self.rel_hist, other.rel_hist),
            plot_hist=_add(self.plot_hist, other.plot_hist),
        )
        merged.worst = self.worst.merge(other.worst)
        return merged

    @property
    def nonfinite(self) -> int:
        return self.nonfinite_ref + self.nonfinite_other

    @property
    def mean_abs(self) -> float:
        return self.sum_abs / self.count if self.count else 0.0

    def histogram(self) -> list[list[float]]:
        """Non-empty bins on PLOT_EDGES as [upper edge, count], for plots."""
        return [[_plot_upper(int(key)), int(count)] for key, count in self.plot_hist.T]

    def quantile(self, q: float) -> float:
        """Upper bound of the q-quantile of |diff| (relative error < QUANTILE_REL_ERROR)."""
        return self._quantile(self.hist, q)

    def rel_quantile(self, q: float) -> float:
        """Upper bound of the q-quantile of |diff| / |ref|, on the same terms."""
        return self._quantile(self.rel_hist, q)

    def _quantile(self, hist: np.ndarray, q: float) -> float:
        if self.count == 0:
            return 0.0
        rank = max(int(np.ceil(q * self.count)), 1)
        index = int(np.searchsorted(np.cumsum(hist[1]), rank))
        return float(bin_upper(hist[0, index : index + 1])[0])


# --- the checks' loops ---------------------------------------------------------------------


def aligned_batches(ref, other, batch_size):
    for start in range(0, len(ref), batch_size):
        yield start, ref[start : start + batch_size], other[start : start + batch_size]


def count_samples_over(ref, other, tol, batch_size=65536) -> int:
    """probability_parity's samples_over_abs_tol."""
    over = 0
    for _, a, b in aligned_batches(ref, other, batch_size):
        diff = np.abs(a.astype(np.float64) - b).reshape(len(a), -1)
        over += int((~(diff <= tol)).any(axis=1).sum())
    return over


def labels(probabilities: np.ndarray) -> np.ndarray:
    """label_agreement's labels of one batch."""
    found = np.argmax(np.nan_to_num(probabilities, nan=-np.inf), axis=1)
    found[~np.isfinite(probabilities).all(axis=1)] = -1
    return found


def confusion(ref, other, n: int, batch_size: int) -> np.ndarray:
    """label_agreement's confusion matrix."""
    matrix = np.zeros((n + 1, n + 1), dtype=np.int64)
    for _, batch_ref, batch_other in aligned_batches(ref, other, batch_size):
        a, b = labels(batch_ref), labels(batch_other)
        np.add.at(matrix, (np.where(a < 0, n, a), np.where(b < 0, n, b)), 1)
    if matrix[n].any() or matrix[:, n].any():
        return matrix
    return matrix[:n, :n]


def disagreeing_rows(ref, other, k: int) -> list[int]:
    """label_agreement's disagreeing rows."""
    rows: list[int] = []
    for start, batch_ref, batch_other in aligned_batches(ref, other, 65536):
        a, b = labels(batch_ref), labels(batch_other)
        rows += [start + int(i) for i in np.flatnonzero((a != b) | (a < 0))[: k - len(rows)]]
        if len(rows) >= k:
            break
    return rows


def output_elements(ref, other, atol: float, rtol: float, batch_size: int, k: int):
    """output_parity's (violations, worst elements) of one output."""
    worst_elements, violations = Worst(k), 0
    per_sample = int(np.prod(ref.shape[1:], dtype=np.int64))
    for start, a, b in aligned_batches(ref, other, batch_size):
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.abs(a64 - b64)
        bad = ~(diff <= atol + rtol * np.abs(a64))
        violations += int(bad.sum())
        flat = np.where(np.isfinite(diff), diff, np.inf).ravel()
        worst_elements.update(flat, np.arange(flat.size) + start * per_sample)
    return violations, worst_elements


def flips(ref_all, other_all, threshold: float, margin: float, batch_size: int, k: int):
    """threshold_flips' (flips, near, flips near, nonfinite rows of each side, flipped rows)."""
    flipped_count, near, flips_near, flip_rows = 0, 0, 0, []
    nonfinite_ref = nonfinite_other = 0
    for start, a, b in aligned_batches(ref_all, other_all, batch_size):
        ref, other = a[:, -1], b[:, -1]
        finite_ref, finite_other = np.isfinite(a).all(axis=1), np.isfinite(b).all(axis=1)
        nonfinite_ref += int((~finite_ref).sum())
        nonfinite_other += int((~finite_other).sum())
        flipped = ((ref >= threshold) != (other >= threshold)) | ~(finite_ref & finite_other)
        close = np.abs(ref - threshold) <= margin
        flipped_count += int(flipped.sum())
        near += int(close.sum())
        flips_near += int((flipped & close).sum())
        flip_rows += [(start + int(i), ref[i], other[i]) for i in np.flatnonzero(flipped)]
        flip_rows = flip_rows[:k]
    return flipped_count, near, flips_near, nonfinite_ref, nonfinite_other, flip_rows
