"""What every check module provides, what it receives, and the result it returns."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from parityspec.spec.models import CheckSpecBase, SpecBase
from parityspec.stats import Worst, shown

if TYPE_CHECKING:
    from parityspec.backends.base import LoadedModel, Predictions
    from parityspec.data import Rows

Status = Literal["passed", "failed", "error", "skipped"]


@dataclass
class CheckInputs:
    spec: SpecBase
    data: Rows
    """The evaluation rows: in memory, or read from their file a batch at a time."""
    reference: Predictions
    candidate: Predictions
    models: dict[str, LoadedModel] = field(default_factory=dict)
    """The loaded models of both backends, for checks that look inside them."""
    first_row: int = 0
    """The id of the first of these rows: a shard's rows are numbered across the data."""


@dataclass(frozen=True)
class Gate:
    """One comparison of a figure with its limit: `max_abs_diff 0.02 <= abs_tol 0.04`."""

    figure: str
    value: float
    op: Literal["<=", ">="]
    limit: str
    limit_value: float

    @property
    def ok(self) -> bool:
        # Written so that NaN fails both ways.
        if self.op == "<=":
            return bool(self.value <= self.limit_value)
        return bool(self.value >= self.limit_value)

    def describe(self) -> str:
        broken = {"<=": ">", ">=": "<"}[self.op] if not self.ok else self.op
        value = shown(self.value, self.limit_value)
        return f"{self.figure} {value} {broken} {self.limit} {self.limit_value:g}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "value": self.value,
            "op": self.op,
            "limit": self.limit,
            "limit_value": self.limit_value,
            "ok": self.ok,
        }


@dataclass
class CheckResult:
    """A verdict with the numbers that explain it."""

    status: Status
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)
    tolerances: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    gates: list[Gate] = field(default_factory=list)
    timings: dict[str, Any] = field(default_factory=dict)
    """Measured times: they go to the report's run section, outside the deterministic body."""

    def __bool__(self) -> bool:
        return self.status == "passed"


class CheckModule(Protocol):
    """A module under `parityspec/checks/` registered in `CHECKS`.

    These are required. The optional hooks (`NEEDS_PREDICTIONS`, `NEEDS_MODELS`,
    `MODEL_NEEDS`, `problems`, `artifacts`), with their defaults, are the fields of
    `checks.capabilities.CheckCapabilities`, read through `check_capabilities(module)`.
    """

    TYPE: str
    TASKS: tuple[str, ...]
    """The model tasks this check makes sense for."""
    Spec: type[CheckSpecBase]
    """Its tolerances are `Spec.TOLERANCES`, a `CheckTolerances` subclass."""

    # `tolerances`: a `Spec.TOLERANCES` resolved from the check's profile and overrides.
    def run(self, spec: Any, tolerances: Any, inputs: CheckInputs) -> CheckResult: ...


class ShardedCheck(Protocol):
    """A check whose statistics merge exactly, whatever the split of the rows into shards
    and the order of merging (`checks.sharding`): `summarize` sums up some rows (their
    outputs, features and ground truth, `inputs.first_row` their first id), two summaries
    `merge`, and `conclude` judges the merged summary. Its `run` is `conclude` of the
    summary of every row, so a sharded run reports exactly what a local one does."""

    def summarize(self, spec: Any, tolerances: Any, inputs: CheckInputs) -> Mergeable: ...
    def conclude(
        self, spec: Any, tolerances: Any, summary: Any, inputs: CheckInputs
    ) -> CheckResult: ...


class Mergeable(Protocol):
    def merge(self, other: Any) -> Any: ...


def verdict(failures: list[str], passed_reason: str) -> tuple[Status, str]:
    if failures:
        return "failed", "; ".join(failures)
    return "passed", passed_reason


def judge(gates: list[Gate], *, extra_failures: Sequence[str | None] = ()) -> tuple[Status, str]:
    """Failed with every broken gate named, or passed with every gate shown."""
    failures = [f for f in extra_failures if f] + [g.describe() for g in gates if not g.ok]
    return verdict(failures, "; ".join(g.describe() for g in gates))


def nonfinite_failure(inputs: CheckInputs, rows_reference: int, rows_candidate: int) -> str | None:
    """NaN or Inf in an output fails whatever the tolerances: how many rows, on which side."""
    sides = ((rows_reference, inputs.reference.backend), (rows_candidate, inputs.candidate.backend))
    parts = [
        f"{rows} row{'' if rows == 1 else 's'} of {backend}" for rows, backend in sides if rows
    ]
    return f"non-finite outputs (NaN/Inf) in {' and '.join(parts)}" if parts else None


def outputs_nonfinite(inputs: CheckInputs) -> str | None:
    """`nonfinite_failure` over every output of both backends, for checks that do not read
    them element by element themselves."""
    batch_size = inputs.spec.data.batch_size
    return nonfinite_failure(
        inputs,
        nonfinite_rows(inputs.reference.outputs.values(), batch_size),
        nonfinite_rows(inputs.candidate.outputs.values(), batch_size),
    )


def nonfinite_rows(outputs: Iterable[Any], batch_size: int) -> int:
    """Rows with a NaN or Inf in any of `outputs` (aligned by row), read batch by batch."""
    numeric = [o for o in outputs if np.dtype(o.dtype).kind in "fc"]
    total = len(numeric[0]) if numeric else 0
    rows = 0
    for start in range(0, total, batch_size):
        stop = min(start + batch_size, total)
        bad = np.zeros(stop - start, dtype=bool)
        for output in numeric:
            batch = np.asarray(output[start:stop])
            bad |= ~np.isfinite(batch.reshape(len(batch), -1)).all(axis=1)
        rows += int(bad.sum())
    return rows


@dataclass
class WorstRows:
    """The worst samples and what a report shows of each (both outputs, the features),
    taken while their rows are at hand: two merge like `Worst`, keeping what they show of
    the samples that stay, so a shard's summary needs no row of another shard."""

    worst: Worst
    shown: dict[int, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(
        cls, worst: Worst, data: Rows, ref: np.ndarray, other: np.ndarray, first_row: int = 0
    ) -> WorstRows:
        """`worst` holds row ids counted from `first_row`, the id of `data`'s first row."""
        local = [int(i) - first_row for i in worst.indices]
        features = data.describe_rows(local)
        shown = {
            index + first_row: {
                "reference": _plain(ref[index]),
                "candidate": _plain(other[index]),
                "features": features[index],
            }
            for index in local
        }
        return cls(worst, shown)

    def merge(self, other: WorstRows) -> WorstRows:
        worst = self.worst.merge(other.worst)
        kept = {int(i) for i in worst.indices}
        shown = {i: s for i, s in (self.shown | other.shown).items() if i in kept}
        return WorstRows(worst, shown)

    def listed(self) -> list[dict[str, Any]]:
        return [
            {"row": int(index), "abs_diff": finite_or_text(float(value)), **self.shown[int(index)]}
            for value, index in zip(self.worst.values, self.worst.indices, strict=True)
        ]


def finite_or_text(value: float) -> float | str:
    """JSON has no NaN or Inf: write them as text so the report stays valid JSON."""
    return value if math.isfinite(value) else str(value)


def _plain(value: Any) -> Any:
    array = np.asarray(value)
    if array.size > 16:
        return f"<{array.dtype} array {list(array.shape)}>"
    if array.ndim == 0:
        return finite_or_text(float(array)) if array.dtype.kind == "f" else array.item()
    return [finite_or_text(float(v)) for v in array.ravel()]
