"""Feed two aligned outputs to mergeable statistics in batches."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from parityspec.stats import DiffStats, reduce_rows


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


def diff_stats_over(
    ref: np.ndarray, other: np.ndarray, batch_size: int, k: int, tol: float, first_row: int = 0
) -> tuple[DiffStats, int]:
    """`diff_stats`, and in the same pass the samples with any element over `tol`, or not
    finite; rows numbered from `first_row`."""
    stats, over = DiffStats(k=k), 0
    for start, a, b in aligned_batches(ref, other, batch_size):
        diff = stats.update(a, b, first_index=first_row + start)
        over += int((~reduce_rows(np.logical_and, (diff <= tol).reshape(len(a), -1))).sum())
    return stats, over
