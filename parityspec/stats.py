"""Mergeable statistics of the difference between two outputs.

Each batch updates a `DiffStats`; two `DiffStats` merge exactly (counts, maxima,
histograms, worst samples) or up to float rounding (sums), so memory does not grow
with the data and sharded runs combine.

Quantiles come from a histogram keyed by the float64 bit pattern of each |diff|: its
exponent and its top MANTISSA_BITS mantissa bits. The key is exact (no logarithm), covers
every float64 from the smallest subnormal to the largest finite value, and no value in a bin
is more than 2**-MANTISSA_BITS below the bin's upper end. A quantile read from it is the
largest float64 in its bin: never below the true value, less than QUANTILE_REL_ERROR above
it, 0 exactly when the true value is 0. Counts are held dense over the keys the data spans
(zeros apart, see `KeyCounts`): the histogram's size follows the spread of the data, not its
rows, and is about 2 MiB at most.

A batch costs a few vectorised passes: one bincount per histogram over the batch's range of
keys (no sort), and the worst samples picked from those at or above the batch's k-th largest.

Sums are exact (`ExactSum`): a mean is the same bits however the rows are split into batches
or shards, and in whatever order those merge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MANTISSA_BITS = 7
QUANTILE_REL_ERROR = 2.0**-MANTISSA_BITS
_SHIFT = 52 - MANTISSA_BITS
_TINY = float(np.finfo(np.float64).tiny)  # the smallest normal float64
_SUBNORMAL_SCALE = 64
_SUBNORMAL_OFFSET = _SUBNORMAL_SCALE << MANTISSA_BITS
_FIRST_NORMAL_KEY = (1 << MANTISSA_BITS) - 1  # the bin whose upper end is 2**-1022
_ZERO_KEY = -(1 << 31)  # below every subnormal's key
_INF_KEY = 2047 << MANTISSA_BITS  # above the largest finite float's key
_LARGEST = float(np.finfo(np.float64).max)

# The histogram drawn in reports: BINS_PER_DECADE bins per decade over the whole float64
# range, bin j holding (PLOT_EDGES[j-1], PLOT_EDGES[j]]; exact zeros and infinities apart.
BINS_PER_DECADE = 20
HIST_LOW_EXP, HIST_HIGH_EXP = -323, 308
_PLOT_STEPS = np.arange(HIST_LOW_EXP * BINS_PER_DECADE, HIST_HIGH_EXP * BINS_PER_DECADE + 1)
PLOT_EDGES = np.append(10.0 ** (_PLOT_STEPS / BINS_PER_DECADE), _LARGEST)
_PLOT_ZERO, _PLOT_INF = -1, len(PLOT_EDGES)
_FEW_COLUMNS = 16


SHOWN_DIGITS = 4  # significant digits of a figure in a sentence; JSON keeps every digit


def shown(value: float, beside: float | None = None) -> str:
    """A figure for a sentence, at SHOWN_DIGITS significant digits; with as many more as it
    takes to stand on the same side of `beside` (its limit) as the figure itself does."""

    def side(x: float) -> int:
        return 0 if beside is None or x == beside else (1 if x > beside else -1)

    for digits in range(SHOWN_DIGITS, 18):
        text = f"{value:.{digits}g}"
        if not math.isfinite(value) or side(float(text)) == side(value):
            return text
    return repr(value)


def bin_keys(values: np.ndarray) -> np.ndarray:
    """The quantile histogram's key of each value (float64, >= 0, finite or +inf)."""
    # Minus one: a value exactly on a bin's upper end belongs to that bin, not the next.
    keys = (values.view(np.int64) - 1) >> _SHIFT
    small = values < _TINY
    if small.any():  # zeros and subnormals
        tiny = values[small]
        # Scaled, a subnormal is a normal float (exactly): its key then has every mantissa bit.
        scaled = ((tiny * 2.0**_SUBNORMAL_SCALE).view(np.int64) - 1) >> _SHIFT
        keys[small] = np.where(tiny == 0, _ZERO_KEY, scaled - _SUBNORMAL_OFFSET)
    keys[values == np.inf] = _INF_KEY
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


_PLOT_GUESS_OFFSET = -HIST_LOW_EXP * BINS_PER_DECADE
# PLOT_EDGES padded so that bin j's lower and upper ends are _PLOT_BOUNDS[j + 1], [j + 2] for
# every key, the zero and infinite ones too.
_PLOT_BOUNDS = np.concatenate([[-np.inf, 0.0], PLOT_EDGES, [np.inf]])


def plot_keys(values: np.ndarray) -> np.ndarray:
    """Each value's bin on PLOT_EDGES (float64, >= 0, finite or +inf): the number of edges
    below it, _PLOT_ZERO for 0, _PLOT_INF for +inf."""
    with np.errstate(divide="ignore"):  # log10(0) is -inf: the zero bin once clipped
        guess = np.ceil(np.log10(values) * BINS_PER_DECADE) + _PLOT_GUESS_OFFSET
    keys = np.clip(guess, _PLOT_ZERO, _PLOT_INF).astype(np.int64)
    # The logarithm and the edges are each off by far less than a bin: the guess is at most
    # one bin out, which one comparison each way puts right.
    keys += values > _PLOT_BOUNDS[keys + 2]
    keys -= values <= _PLOT_BOUNDS[keys + 1]
    # Subnormal edges are rounded to a few units of the smallest float, some onto each other.
    subnormal = (values > 0) & (values < _TINY)
    if subnormal.any():
        keys[subnormal] = np.searchsorted(PLOT_EDGES, values[subnormal], side="left")
    return keys


@dataclass
class KeyCounts:
    """Counts of integer keys: dense over a window of keys that grows to cover those added,
    plus the zero key (far below the others) counted apart, so that the window follows the
    spread of the data and adding a batch is one bincount over its own range."""

    low: int = 0
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    zeros: int = 0

    def add(self, keys: np.ndarray) -> None:
        if not keys.size:
            return
        low = int(keys.min())
        if low == _ZERO_KEY:
            nonzero = keys != _ZERO_KEY
            keys = keys[nonzero]
            self.zeros += len(nonzero) - len(keys)
            if not keys.size:
                return
            low = int(keys.min())
        batch = np.bincount(keys - low)
        self._cover(low, low + len(batch))
        self.counts[low - self.low : low - self.low + len(batch)] += batch

    def merge(self, other: KeyCounts) -> KeyCounts:
        """A new KeyCounts holding both; neither operand is changed."""
        merged = KeyCounts(self.low, self.counts.copy(), self.zeros + other.zeros)
        if other.counts.size:
            merged._cover(other.low, other.low + len(other.counts))
            start = other.low - merged.low
            merged.counts[start : start + len(other.counts)] += other.counts
        return merged

    def tally(self) -> np.ndarray:
        """The non-zero counts as sorted (key, count) pairs in a 2 x K array."""
        held = np.flatnonzero(self.counts)
        keys, counts = held + self.low, self.counts[held]
        if self.zeros:
            keys, counts = np.append(_ZERO_KEY, keys), np.append(self.zeros, counts)
        return np.stack([keys, counts]).astype(np.int64)

    def _cover(self, low: int, stop: int) -> None:
        if not self.counts.size:
            self.low, self.counts = low, np.zeros(stop - low, dtype=np.int64)
            return
        new_low, new_stop = min(low, self.low), max(stop, self.low + len(self.counts))
        if (new_low, new_stop) != (self.low, self.low + len(self.counts)):
            wider = np.zeros(new_stop - new_low, dtype=np.int64)
            wider[self.low - new_low : self.low - new_low + len(self.counts)] = self.counts
            self.low, self.counts = new_low, wider


_SIGN_AND_EXPONENT = 1 << 12
_FRACTION_MASK = (1 << 52) - 1
_IMPLICIT_BIT = 1 << 52
_LOW_BITS = 26
_LOW_MASK = (1 << _LOW_BITS) - 1
# Per bincount at most 2**24 values of < 2**27: every float64 partial sum stays exact.
_EXACT_CHUNK = 1 << 24
_SMALLEST_SUBNORMAL_EXP = 1074


@dataclass
class ExactSum:
    """The exact sum of float64 values, as an integer count of the smallest subnormal
    (2**-1074): adding and merging are integer additions, so the result does not depend on
    batches, shards or their order, and `value` rounds it to float64 once.

    A batch is split by each value's sign and exponent; the integer mantissas of each group
    are summed (in two 26-bit halves, exact in float64 bincounts), then shifted into place."""

    units: int = 0
    nonfinite: tuple[bool, bool, bool] = (False, False, False)
    """Whether +inf, -inf or NaN were added: the sum is then that, as IEEE addition says."""

    def add(self, values: np.ndarray) -> None:
        flat = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
        finite = np.isfinite(flat)
        if not finite.all():
            odd = flat[~finite]
            pos, neg, nan = self.nonfinite
            self.nonfinite = (
                pos or bool((odd == np.inf).any()),
                neg or bool((odd == -np.inf).any()),
                nan or bool(np.isnan(odd).any()),
            )
            flat = flat[finite]
        for start in range(0, len(flat), _EXACT_CHUNK):
            self.units += _exact_units(flat[start : start + _EXACT_CHUNK])

    def merge(self, other: ExactSum) -> ExactSum:
        flags = tuple(a or b for a, b in zip(self.nonfinite, other.nonfinite, strict=True))
        return ExactSum(self.units + other.units, flags)  # type: ignore[arg-type]

    def divided(self, count: int) -> float:
        """The sum over `count`, correctly rounded (one rounding, not two)."""
        pos, neg, nan = self.nonfinite
        if nan or (pos and neg):
            return float("nan")
        if pos or neg:
            return float("inf") if pos else float("-inf")
        try:
            return self.units / (count << _SMALLEST_SUBNORMAL_EXP)
        except OverflowError:
            return float("inf") if self.units > 0 else float("-inf")

    @property
    def value(self) -> float:
        return self.divided(1)


def _exact_units(values: np.ndarray) -> int:
    """The exact sum of finite float64 `values`, in units of 2**-1074."""
    if not values.size:
        return 0
    bits = values.view(np.int64)
    keys = (bits >> 52) & (_SIGN_AND_EXPONENT - 1)  # sign bit, then the 11 exponent bits
    fraction = bits & _FRACTION_MASK
    mantissa = np.where((keys & 0x7FF) > 0, fraction | _IMPLICIT_BIT, fraction)
    high = np.bincount(keys, weights=mantissa >> _LOW_BITS, minlength=_SIGN_AND_EXPONENT)
    low = np.bincount(keys, weights=mantissa & _LOW_MASK, minlength=_SIGN_AND_EXPONENT)
    total = 0
    for key in np.flatnonzero(high + low):
        exponent, negative = int(key) & 0x7FF, int(key) >> 11
        # A subnormal's exponent field is 0 but it scales like exponent 1.
        part = ((int(high[key]) << _LOW_BITS) + int(low[key])) << max(exponent - 1, 0)
        total += -part if negative else part
    return total


def reduce_rows(ufunc: np.ufunc, values: np.ndarray) -> np.ndarray:
    """`ufunc.reduce(values, axis=1)` of a 2-D array with columns. Over a few columns it goes
    a column at a time: numpy's reduction along rows pays a call per row (30x slower at 2)."""
    if not 0 < values.shape[1] <= _FEW_COLUMNS:
        return ufunc.reduce(values, axis=1)
    out = values[:, 0].copy()
    for column in range(1, values.shape[1]):
        ufunc(out, values[:, column], out=out)
    return out


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
        if len(values) > self.k > 0:
            # Only values at or above the k-th largest can stay: sort those (every tie with
            # it included, so ties still go to the lower index). NaN ranks last, as in lexsort.
            kth = np.partition(-values, self.k - 1)[self.k - 1]
            if not np.isnan(kth):
                candidates = -values <= kth
                values, indices = values[candidates], indices[candidates]
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
    sum_abs: ExactSum = field(default_factory=ExactSum)
    max_abs: float = 0.0
    max_rel: float = 0.0
    abs_counts: KeyCounts = field(default_factory=KeyCounts)
    """|a - b| counted by `bin_keys`, for quantiles."""
    rel_counts: KeyCounts = field(default_factory=KeyCounts)
    """|a - b| / |a| on the same bins; a difference against an exact 0 is infinite."""
    plot_counts: KeyCounts = field(default_factory=KeyCounts)
    """|a - b| counted by `plot_keys`, for the report's histogram."""
    worst: Worst = field(init=False)
    """The k worst samples; `merge` sets it on the merged stats."""

    def __post_init__(self) -> None:
        self.worst = Worst(self.k)

    def update(self, ref: np.ndarray, other: np.ndarray, first_index: int = 0) -> np.ndarray:
        """Add a batch: `ref` and `other` of the same shape, samples along axis 0. Returns the
        batch's element-wise |ref - other| in float64 (NaN or Inf where an input is), for a
        caller that judges elements too."""
        ref = np.asarray(ref, dtype=np.float64)
        other = np.asarray(other, dtype=np.float64)
        if ref.shape != other.shape:
            raise ValueError(f"shapes differ: {ref.shape} vs {other.shape}")
        with np.errstate(invalid="ignore", over="ignore"):  # non-finite elements: see below
            diff = np.abs(ref - other)
        if len(ref) == 0:
            return diff
        flat = diff.reshape(-1)
        if np.isfinite(float(flat.sum())):
            # Every input is finite (NaN or Inf in, NaN or Inf out) and no difference overflowed.
            finite_diff, denom = flat, np.abs(ref).reshape(-1)
            self.count += flat.size
            per_sample = diff.reshape(len(ref), -1)
        else:
            finite_ref, finite_other = np.isfinite(ref), np.isfinite(other)
            self.nonfinite_ref += int((~finite_ref).sum())
            self.nonfinite_other += int((~finite_other).sum())
            self.nonfinite_rows_ref += int((~finite_ref.reshape(len(ref), -1).all(axis=1)).sum())
            self.nonfinite_rows_other += int(
                (~finite_other.reshape(len(ref), -1).all(axis=1)).sum()
            )
            both = finite_ref & finite_other
            finite_diff, denom = diff[both], np.abs(ref[both])
            self.count += finite_diff.size
            # A non-finite element counts as an infinite difference for its sample.
            per_sample = np.where(both, diff, np.inf).reshape(len(ref), -1)
        if finite_diff.size:
            self.sum_abs.add(finite_diff)
            self.max_abs = max(self.max_abs, float(finite_diff.max()))
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                rel = finite_diff / denom  # x / 0 is inf, 0 / 0 NaN: 0 below; huge is inf
            max_rel = float(rel.max())
            if np.isnan(max_rel):
                rel[np.isnan(rel)] = 0.0
                max_rel = float(rel.max())
            self.max_rel = max(self.max_rel, max_rel)
            self.abs_counts.add(bin_keys(finite_diff))
            self.rel_counts.add(bin_keys(rel))
            self.plot_counts.add(plot_keys(finite_diff))
        worst = reduce_rows(np.maximum, per_sample) if per_sample.size else np.zeros(len(ref))
        self.worst.update(worst, np.arange(first_index, first_index + len(ref)))
        return diff

    def merge(self, other: DiffStats) -> DiffStats:
        merged = DiffStats(
            k=self.k,
            count=self.count + other.count,
            nonfinite_ref=self.nonfinite_ref + other.nonfinite_ref,
            nonfinite_other=self.nonfinite_other + other.nonfinite_other,
            nonfinite_rows_ref=self.nonfinite_rows_ref + other.nonfinite_rows_ref,
            nonfinite_rows_other=self.nonfinite_rows_other + other.nonfinite_rows_other,
            sum_abs=self.sum_abs.merge(other.sum_abs),
            max_abs=max(self.max_abs, other.max_abs),
            max_rel=max(self.max_rel, other.max_rel),
            abs_counts=self.abs_counts.merge(other.abs_counts),
            rel_counts=self.rel_counts.merge(other.rel_counts),
            plot_counts=self.plot_counts.merge(other.plot_counts),
        )
        merged.worst = self.worst.merge(other.worst)
        return merged

    @property
    def nonfinite(self) -> int:
        return self.nonfinite_ref + self.nonfinite_other

    @property
    def mean_abs(self) -> float:
        return self.sum_abs.divided(self.count) if self.count else 0.0

    @property
    def hist(self) -> np.ndarray:
        """|a - b| by `bin_keys`, as sorted (key, count) pairs."""
        return self.abs_counts.tally()

    @property
    def rel_hist(self) -> np.ndarray:
        """|a - b| / |a| by `bin_keys`, as sorted (key, count) pairs."""
        return self.rel_counts.tally()

    def histogram(self) -> list[list[float]]:
        """Non-empty bins on PLOT_EDGES as [upper edge, count], for plots."""
        tally = self.plot_counts.tally()
        return [[_plot_upper(int(key)), int(count)] for key, count in tally.T]

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
