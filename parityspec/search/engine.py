"""The search: hypothesis generates batches of rows, `target()` steers it towards the largest
divergence, and the worst failing row is then shrunk to the fewest moved features.

hypothesis runs as a library: no example database, no health checks, nothing printed, a
seed of the spec's. A run with the same inputs generates the same rows, unless `max_seconds`
ends it first (the result says which bound ended it)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings, target
from hypothesis import strategies as st

from parityspec.search.space import Generated

TARGET_CAP = 1e12
"""target() takes finite scores: an error or a non-finite output scores this."""


@dataclass
class Evaluated:
    """One generated row on both backends."""

    row: Generated
    divergence: float
    """The gated measure: max |p_ref - p_cand| (classifiers) or the worst |diff| over
    atol + rtol*|ref| (other outputs); inf when the candidate errs or returns NaN/Inf."""
    reference: dict[str, np.ndarray]
    candidate: dict[str, np.ndarray]
    error: str | None = None
    """The candidate's error on a row the reference accepts."""
    fails: bool = False


class Space(Protocol):
    """What may be generated: table rows (`space.TableSpace`) or tensor samples
    (`tensors.TensorSpace`), a batch of `rows` per example."""

    def strategy(self, rows: int) -> st.SearchStrategy[list[Generated]]: ...


Evaluate = Callable[[list[Generated]], list[Evaluated | None]]
"""Rows -> each one evaluated, or None where the reference itself refuses it."""


@dataclass
class SearchResult:
    examples: int = 0
    rows: int = 0
    rejected_by_reference: int = 0
    ended_by: str = "max_examples"
    worst: list[Evaluated] = field(default_factory=list)
    failing: int = 0
    errors: list[Evaluated] = field(default_factory=list)
    minimal: Evaluated | None = None
    moved_before_shrink: int = 0


def search(
    space: Space,
    evaluate: Evaluate,
    *,
    max_examples: int,
    max_seconds: float,
    rows_per_example: int,
    keep: int,
    seed_value: int,
) -> SearchResult:
    result = SearchResult()
    seen: dict[tuple, Evaluated] = {}
    started = time.monotonic()

    @seed(seed_value)
    @settings(
        max_examples=max_examples,
        database=None,
        deadline=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.generate, Phase.target),
        verbosity=Verbosity.quiet,
        print_blob=False,
        report_multiple_bugs=False,
    )
    @given(space.strategy(rows_per_example))
    def explore(rows: list[Generated]) -> None:
        if result.ended_by == "max_seconds" or time.monotonic() - started > max_seconds:
            result.ended_by = "max_seconds"  # the remaining examples are drawn, not run
            return
        outcomes = evaluate(rows)
        result.examples += 1
        result.rows += len(rows)
        scores = [0.0]
        for outcome in outcomes:
            if outcome is None:
                result.rejected_by_reference += 1
                continue
            scores.append(min(outcome.divergence, TARGET_CAP))
            known = seen.setdefault(outcome.row.key(), outcome)
            if known is outcome and outcome.fails:
                result.failing += 1
                if outcome.error is not None:
                    result.errors.append(outcome)
        target(float(max(scores)), label="divergence")

    explore()
    ranked = sorted(seen.values(), key=lambda e: -_rank(e))
    result.worst = ranked[:keep]
    failing = [e for e in ranked if e.fails]
    if failing:
        result.moved_before_shrink = len(failing[0].row.moves)
        result.minimal = shrink(failing[0], evaluate)
    return result


def shrink(found: Evaluated, evaluate: Evaluate) -> Evaluated:
    """Fewer moves while it still fails: drop each move that is not needed, then start from
    the typical row if that still fails. Each round tries every single change in one batch."""
    current = found
    while True:
        trials = [
            Generated(current.row.base, current.row.moves[:i] + current.row.moves[i + 1 :])
            for i in range(len(current.row.moves))
        ]
        if current.row.base != 0:
            trials.append(Generated(0, current.row.moves))
        if not trials:
            return current
        outcomes = evaluate(trials)
        better = [o for o in outcomes if o is not None and o.fails]
        if not better:
            return current
        # The fewest moves first, then the largest divergence: a deterministic choice.
        current = min(better, key=lambda o: (len(o.row.moves), o.row.base != 0, -_rank(o)))


def _rank(outcome: Evaluated) -> float:
    value = outcome.divergence
    return math.inf if math.isnan(value) else value


class _OneByOne(Exception):
    """Not an error: the rows are predicted one by one."""


def row_outputs(outputs: dict[str, np.ndarray], index: int) -> dict[str, np.ndarray]:
    return {name: np.asarray(values[index]) for name, values in outputs.items()}


def predict_rows(
    predict: Callable[[Any], dict[str, np.ndarray]],
    batch: Any,
    rows: int,
    take: Callable[[Any, int], Any],
    alone: bool = False,
) -> tuple[list[dict[str, np.ndarray] | None], list[str | None]]:
    """Each row's outputs, or its error: the batch at once, row by row when that raises or
    when `alone` (a model whose rows depend on their batch-mates) (`take(batch, i)`: row i
    alone)."""
    try:
        if alone and rows > 1:
            raise _OneByOne
        outputs = predict(batch)
    except Exception as error:
        if rows == 1:
            text = str(error).strip().splitlines()
            return [None], [f"{type(error).__name__}: {text[0][:300] if text else ''}"]
        single = [predict_rows(predict, take(batch, i), 1, take) for i in range(rows)]
        return [s[0][0] for s in single], [s[1][0] for s in single]
    return [row_outputs(outputs, i) for i in range(rows)], [None] * rows
