"""Feed two aligned outputs to mergeable statistics in batches."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from parityspec.stats import DiffStats


def aligned_batches(
    ref: np.ndarray, other: np.ndarray, batch_size: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    for start in range(0, len(ref), batch_size):
        yield start, ref[start : start + batch_size], other[start : start + batch_size]


def diff_stats(ref: np.ndarray, other: np.ndarray, batch_size: int, k: int) -> DiffStats:
    stats = DiffStats(k=k)
    for start, a, b in aligned_batches(ref, other, batch_size):
        stats.update(a, b, first_index=start)
    return stats


def shape_mismatch(name: str, ref: np.ndarray, other: np.ndarray) -> str | None:
    if ref.shape != other.shape:
        return f"{name}: shapes differ, {list(ref.shape)} vs {list(other.shape)}"
    return None


def count_samples_over(
    ref: np.ndarray, other: np.ndarray, tol: float, batch_size: int = 65536
) -> int:
    """Samples with any element over `tol`, or not finite."""
    over = 0
    for _, a, b in aligned_batches(ref, other, batch_size):
        diff = np.abs(a.astype(np.float64) - b).reshape(len(a), -1)
        over += int((~(diff <= tol)).any(axis=1).sum())
    return over
