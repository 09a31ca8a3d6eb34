"""Mergeable statistics of the difference between two outputs.

Each batch updates a `DiffStats`; two `DiffStats` merge exactly (counts, maxima,
histogram, worst samples) or up to float rounding (sums), so memory does not grow
with the data and sharded runs combine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Log-scale histogram of |diff|: bin 0 holds exact zeros, then BINS_PER_DECADE bins per
# decade from 1e-12 to 1e+6, then one overflow bin. A quantile read from it is the upper
# edge of its bin: never below the true value, at most 10**(1/BINS_PER_DECADE) above it.
BINS_PER_DECADE = 20
HIST_LOW_EXP, HIST_HIGH_EXP = -12, 6
HIST_EDGES = np.logspace(
    HIST_LOW_EXP, HIST_HIGH_EXP, (HIST_HIGH_EXP - HIST_LOW_EXP) * BINS_PER_DECADE + 1
)
HIST_BINS = len(HIST_EDGES) + 2
QUANTILE_REL_ERROR = float(10 ** (1 / BINS_PER_DECADE) - 1)


def _histogram(abs_diff: np.ndarray) -> np.ndarray:
    counts = np.zeros(HIST_BINS, dtype=np.int64)
    # Bin 0: exact zeros; bin j >= 1: (HIST_EDGES[j-2], HIST_EDGES[j-1]]; the last: overflow.
    idx = np.searchsorted(HIST_EDGES, abs_diff, side="left") + 1
    idx[abs_diff == 0] = 0
    np.add.at(counts, idx, 1)
    return counts


def _bin_upper_edge(index: int) -> float:
    if index == 0:
        return 0.0
    if index > len(HIST_EDGES):
        return float("inf")
    return float(HIST_EDGES[index - 1])


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
    sum_abs: float = 0.0
    max_abs: float = 0.0
    max_rel: float = 0.0
    hist: np.ndarray = field(default_factory=lambda: np.zeros(HIST_BINS, np.int64))
    rel_hist: np.ndarray = field(default_factory=lambda: np.zeros(HIST_BINS, np.int64))
    """|a - b| / |a| on the same bins; a difference against an exact 0 is infinite."""
    worst: Worst | None = None

    def __post_init__(self) -> None:
        if self.worst is None:
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
        both = finite_ref & finite_other
        with np.errstate(invalid="ignore", over="ignore"):  # non-finite elements are masked
            abs_diff = np.where(both, np.abs(ref - other), 0.0)
        # A non-finite element counts as an infinite difference for its sample.
        sample_diff = np.where(both, abs_diff, np.inf).reshape(len(ref), -1)
        self.count += int(both.sum())
        if both.any():
            finite_diff = abs_diff[both]
            self.sum_abs += float(finite_diff.sum())
            self.max_abs = max(self.max_abs, float(finite_diff.max()))
            denom = np.abs(ref[both])
            rel = np.divide(finite_diff, denom, out=np.zeros_like(finite_diff), where=denom > 0)
            rel[(denom == 0) & (finite_diff > 0)] = np.inf
            self.max_rel = max(self.max_rel, float(rel.max()))
            self.hist += _histogram(finite_diff)
            self.rel_hist += _histogram(rel)
        per_sample = sample_diff.max(axis=1) if sample_diff.size else np.zeros(len(ref))
        self.worst.update(per_sample, np.arange(first_index, first_index + len(ref)))

    def merge(self, other: DiffStats) -> DiffStats:
        return DiffStats(
            k=self.k,
            count=self.count + other.count,
            nonfinite_ref=self.nonfinite_ref + other.nonfinite_ref,
            nonfinite_other=self.nonfinite_other + other.nonfinite_other,
            sum_abs=self.sum_abs + other.sum_abs,
            max_abs=max(self.max_abs, other.max_abs),
            max_rel=max(self.max_rel, other.max_rel),
            hist=self.hist + other.hist,
            rel_hist=self.rel_hist + other.rel_hist,
            worst=self.worst.merge(other.worst),
        )

    @property
    def nonfinite(self) -> int:
        return self.nonfinite_ref + self.nonfinite_other

    @property
    def mean_abs(self) -> float:
        return self.sum_abs / self.count if self.count else 0.0

    def histogram(self) -> list[list[float]]:
        """Non-empty bins as [upper edge, count], for plots."""
        return [[_bin_upper_edge(i), int(c)] for i, c in enumerate(self.hist) if c]

    def quantile(self, q: float) -> float:
        """Upper bound of the q-quantile of |diff| (relative error <= QUANTILE_REL_ERROR)."""
        return self._quantile(self.hist, q)

    def rel_quantile(self, q: float) -> float:
        """Upper bound of the q-quantile of |diff| / |ref|, on the same terms."""
        return self._quantile(self.rel_hist, q)

    def _quantile(self, hist: np.ndarray, q: float) -> float:
        if self.count == 0:
            return 0.0
        rank = int(np.ceil(q * self.count))
        return _bin_upper_edge(int(np.searchsorted(np.cumsum(hist), max(rank, 1))))
