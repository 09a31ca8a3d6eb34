"""What the search may generate: each row is a base row (the typical row, or one of the data's
rows) with a few features moved, each move saying what kind of input it is.

Strategies shrink towards the typical row and towards fewer moves: hypothesis's own order of
simplicity then matches "as few features moved from a typical row as possible"."""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from hypothesis import strategies as st

if TYPE_CHECKING:
    import pandas as pd

    from parityspec.search.trees import Threshold

FLOAT32_MAX = float(np.finfo(np.float32).max)
EXTREMES: tuple[tuple[float, str], ...] = (
    (0.0, "zero"),
    (FLOAT32_MAX, "the largest float32"),
    (-FLOAT32_MAX, "minus the largest float32"),
    (float(np.finfo(np.float32).smallest_subnormal), "the smallest float32 subnormal"),
    (-float(np.finfo(np.float32).smallest_subnormal), "minus the smallest float32 subnormal"),
    (float(np.finfo(np.float32).tiny), "the smallest float32 normal"),
    (5e-324, "the smallest float64 subnormal (0 in float32)"),
)
BASE_ROWS = 256
"""Data rows a generated row may start from, beside the typical row."""
THRESHOLDS_PER_COLUMN = 4096
"""Split thresholds kept per column (evenly by rank when a forest has more)."""
BEYOND_GRID = 16
"""Grid points per span of the observed range, beyond it."""
NEAREST_SPLITS = 8
"""A threshold move picks among this many splits on either side of the base row's value."""


@dataclass(frozen=True)
class Move:
    """One feature moved away from its base row's value."""

    column: str
    value: Any
    """A float (NaN when missing), a category, or None for a missing category."""
    kind: str
    label: str
    index: int | None = None
    """Tensor inputs: the element moved (flat index); None for a table column, or a move of
    the whole input (scaled, filled)."""


@dataclass(frozen=True)
class Generated:
    """A base row (0: the typical row; i: data row `i - 1` of the sample) and its moves."""

    base: int
    moves: tuple[Move, ...]

    def key(self) -> tuple:
        return (self.base, tuple((m.column, m.index, m.kind, repr(m.value)) for m in self.moves))

    def describe(self) -> str:
        return "; ".join(m.label for m in self.moves) or "no feature moved"


@dataclass
class NumericColumn:
    name: str
    lo: float
    hi: float
    typical: float
    integer: bool
    missing_ok: bool = False
    splits: list[Threshold] = field(default_factory=list)
    """The split thresholds on this column, by value."""
    cache: dict[Any, st.SearchStrategy[Any]] = field(default_factory=dict, repr=False)
    """Strategies built once: hypothesis validates each new one, which costs more than
    the predictions when it happens for every row."""

    def kinds(self) -> list[str]:
        kinds = ["in_range", "rounding", "extreme", "beyond"]
        if self.splits:
            kinds.insert(0, "threshold")
        if self.missing_ok:
            kinds.append("missing")
        return kinds

    def near(self, value: Any) -> st.SearchStrategy[tuple[float, str]]:
        """A split threshold close to `value` (the base row's), and a value at or beside it:
        the splits nearest a row's own value are the likeliest on its paths down the trees."""
        key = ("near", None if _missing(value) else float(value))
        if key not in self.cache:
            self.cache[key] = self._near(value)
        return self.cache[key]

    def _near(self, value: Any) -> st.SearchStrategy[tuple[float, str]]:
        raws = [t.raw for t in self.splits]
        start = bisect.bisect_left(raws, self.typical if _missing(value) else float(value))
        offsets = st.integers(-NEAREST_SPLITS, NEAREST_SPLITS)
        index = offsets.map(lambda k: min(max(start + k, 0), len(raws) - 1))
        return index.flatmap(lambda i: st.sampled_from(neighbours(self.splits[i])))

    def values(self, kind: str) -> st.SearchStrategy[tuple[float, str]]:
        if kind not in self.cache:
            self.cache[kind] = self._values(kind)
        return self.cache[kind]

    def _values(self, kind: str) -> st.SearchStrategy[tuple[float, str]]:
        name, lo, hi = self.name, self.lo, self.hi
        seen = f"the observed range {lo:.6g} to {hi:.6g}"
        if kind == "missing":
            return st.just((math.nan, f"NaN in {name}"))
        if kind == "extreme":
            return st.sampled_from([(v, f"{name} = {text}") for v, text in EXTREMES])
        if kind == "rounding":
            return _within(lo, hi, self.integer).map(lambda v: _halfway(name, v))
        if kind == "beyond":
            span = max(hi - lo, abs(hi), abs(lo), 1.0)
            # A grid out to 4 spans on either side, 1/16 span apart, beside free floats:
            # hypothesis's floats cluster, the grid leaves no band of that width unvisited.
            steps = [k * span / BEYOND_GRID for k in range(1, 4 * BEYOND_GRID + 1)]
            grid = st.sampled_from([hi + d for d in steps] + [lo - d for d in steps])
            above = st.floats(hi, hi + 4 * span, exclude_min=True)
            below = st.floats(lo - 4 * span, lo, exclude_max=True)
            return st.one_of(grid, above, below).map(
                lambda v: (v, f"{name} = {v!r}, beyond {seen}")
            )
        return _within(lo, hi, self.integer).map(lambda v: (v, f"{name} = {v!r}, within {seen}"))


@dataclass
class CategoricalColumn:
    name: str
    counts: dict[str, int]
    """Rows per category in the sample, most frequent first."""
    missing_ok: bool = False
    cache: dict[Any, st.SearchStrategy[Any]] = field(default_factory=dict, repr=False)

    @property
    def typical(self) -> str:
        return next(iter(self.counts))

    def unseen(self) -> str:
        value = "<unseen>"
        while value in self.counts:
            value += "?"
        return value

    def kinds(self) -> list[str]:
        return ["category", "rare", "unseen"] + (["missing"] if self.missing_ok else [])

    def values(self, kind: str) -> st.SearchStrategy[tuple[Any, str]]:
        if kind not in self.cache:
            self.cache[kind] = self._values(kind)
        return self.cache[kind]

    def _values(self, kind: str) -> st.SearchStrategy[tuple[Any, str]]:
        name, total = self.name, sum(self.counts.values())
        if kind == "unseen":
            return st.just((self.unseen(), f"unseen category in {name}"))
        if kind == "missing":
            return st.just((None, f"missing value in {name}"))
        ranked = sorted(self.counts, key=lambda c: (self.counts[c], c))
        chosen = ranked[: max(1, len(ranked) // 2)] if kind == "rare" else ranked[::-1]
        what = "rare category" if kind == "rare" else "category"
        return st.sampled_from(
            [(c, f"{what} {c!r} in {name} ({self.counts[c]} of {total} rows)") for c in chosen]
        )


Column = NumericColumn | CategoricalColumn


class TableSpace:
    """Rows of a table: the data's columns, typed by its sample."""

    def __init__(self, sample: pd.DataFrame, max_moves: int) -> None:
        self.order = [str(c) for c in sample.columns]
        self.dtypes = {str(c): sample[c].dtype for c in sample.columns}
        self.columns: list[Column] = []
        for name in self.order:
            values = sample[name]
            if values.dtype.kind == "b":
                continue  # a flag has nothing to move but its other value: not searched
            if values.dtype.kind in "iuf":
                self.columns.append(_numeric(name, values))
            elif values.dtype.kind in "OUS" or str(values.dtype) in ("str", "string", "category"):
                counts = values.dropna().astype(str).value_counts(sort=False)
                if len(counts):
                    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                    self.columns.append(
                        CategoricalColumn(name, {str(k): int(v) for k, v in ordered})
                    )
        self.max_moves = max(1, min(max_moves, len(self.columns)))
        typical = {c.name: c.typical for c in self.columns}
        picked = np.unique(np.linspace(0, len(sample) - 1, min(BASE_ROWS, len(sample)), dtype=int))
        rows = sample.iloc[picked].to_dict("records") if len(sample) else []
        # The typical row takes each unsearched column (a flag) from the first data row.
        first: dict[str, Any] = {str(k): v for k, v in rows[0].items()} if rows else {}
        self.bases: list[dict[str, Any]] = [{**first, **typical}] + [
            {str(k): v for k, v in row.items()} for row in rows
        ]
        self.base_rows = [int(i) for i in picked]
        """The sample's row of each base after the typical one."""
        self._draws: tuple[Any, Any, list[Any]] | None = None

    def numeric(self) -> list[NumericColumn]:
        return [c for c in self.columns if isinstance(c, NumericColumn)]

    def add_thresholds(self, thresholds: list[Threshold]) -> None:
        by_column: dict[str, list[Threshold]] = {}
        for threshold in thresholds:
            by_column.setdefault(threshold.column, []).append(threshold)
        for column in self.numeric():
            found = sorted(by_column.get(column.name, []), key=lambda t: (t.raw, t.tree))
            unique = [
                replace(group[0], shared=len(group))
                for group in (list(g) for _, g in itertools.groupby(found, key=lambda t: t.raw))
            ]
            if len(unique) > THRESHOLDS_PER_COLUMN:
                keep = np.linspace(0, len(unique) - 1, THRESHOLDS_PER_COLUMN, dtype=int)
                unique = [unique[i] for i in keep]
            column.splits = unique

    def strategy(self, rows: int) -> st.SearchStrategy[list[Generated]]:
        # A full batch per example: one prediction call serves them all.
        return st.lists(st.composite(self._row)(), min_size=rows, max_size=rows)

    def _row(self, draw: Any) -> Generated:
        if self._draws is None:  # built at the first draw: thresholds and NaN are known
            self._draws = (
                st.integers(0, len(self.bases) - 1),
                st.lists(
                    st.integers(0, len(self.columns) - 1),
                    min_size=1,
                    max_size=self.max_moves,
                    unique=True,
                ),
                [st.sampled_from(c.kinds()) for c in self.columns],
            )
        bases, columns, kinds = self._draws
        base = draw(bases)
        picked = draw(columns)
        moves = []
        for index in sorted(picked):
            column = self.columns[index]
            kind = draw(kinds[index])
            if kind == "threshold":
                assert isinstance(column, NumericColumn)
                value, label = draw(column.near(self.bases[base].get(column.name)))
            else:
                value, label = draw(column.values(kind))
            moves.append(Move(column.name, value, kind, label))
        return Generated(base, tuple(moves))

    def values(self, row: Generated) -> dict[str, Any]:
        values = dict(self.bases[row.base])
        for move in row.moves:
            values[move.column] = move.value
        return values

    def frame(self, rows: list[Generated]) -> pd.DataFrame:
        """The rows as the data's frame: its columns in order, categories as its text type,
        integer columns as integers while every value is one (as a CSV of them reads)."""
        import pandas as pd

        records = [self.values(r) for r in rows]
        columns = {}
        for name in self.order:
            cells = [r.get(name) for r in records]
            dtype = self.dtypes[name]
            if dtype.kind in "iuf":
                values = np.array([math.nan if c is None else c for c in cells], dtype=np.float64)
                integral = dtype.kind in "iu" and np.all(np.isfinite(values))
                if (
                    integral
                    and np.all(values == np.round(values))
                    and np.all(np.abs(values) < 2**62)
                ):
                    values = values.astype(np.int64)
                columns[name] = pd.Series(values)
            elif dtype.kind == "b":
                columns[name] = pd.Series(cells, dtype=dtype)
            else:
                columns[name] = pd.Series(
                    [None if _missing(c) else str(c) for c in cells], dtype=dtype
                )
        return pd.DataFrame(columns)

    def batch(self, rows: list[Generated]) -> pd.DataFrame:
        return self.frame(rows)

    def base_name(self, base: int) -> str:
        return "the typical row" if base == 0 else f"data row {self.base_rows[base - 1]}"


def neighbours(threshold: Threshold) -> list[tuple[float, str]]:
    """A split threshold in the input's units, and the float32 and float64 values on either
    side of it: where a float32 runtime and a float64 one round to different branches."""
    raw = threshold.raw
    at = threshold.describe()
    with np.errstate(over="ignore"):  # a split beyond float32's range: its sides are inf
        f32 = np.float32(raw)
    if float(f32) <= raw:
        below32, above32 = f32, np.nextafter(f32, np.float32(np.inf))
    else:
        below32, above32 = np.nextafter(f32, np.float32(-np.inf)), f32
    values = [
        (raw, at),
        (float(below32), f"{at}, float32 side below"),
        (float(above32), f"{at}, float32 side above"),
        (float(np.nextafter(raw, -np.inf)), f"{at}, float64 side below"),
        (float(np.nextafter(raw, np.inf)), f"{at}, float64 side above"),
    ]
    return [(v, label) for v, label in values if math.isfinite(v)]


def _numeric(name: str, values: pd.Series) -> NumericColumn:
    present = values.dropna().to_numpy(dtype=np.float64)
    integer = values.dtype.kind in "iu" or bool(
        len(present) and np.all(present == np.round(present))
    )
    if not len(present):
        return NumericColumn(name, 0.0, 0.0, 0.0, integer)
    typical = float(np.median(present))
    if integer:
        typical = float(np.round(typical))
    return NumericColumn(name, float(present.min()), float(present.max()), typical, integer)


def _within(lo: float, hi: float, integer: bool) -> st.SearchStrategy[float]:
    if integer and math.ceil(lo) <= math.floor(hi):
        return st.integers(math.ceil(lo), math.floor(hi)).map(float)
    return st.floats(lo, hi, allow_nan=False)


def _halfway(name: str, value: float) -> tuple[float, str]:
    """The float64 halfway between the two float32 neighbours of `value`: float32 rounds it
    to one of them (ties to even), float64 keeps it."""
    with np.errstate(over="ignore"):
        f32 = np.float32(value)
    other = np.nextafter(f32, np.float32(np.inf))
    if not np.isfinite(other):
        other = np.nextafter(f32, np.float32(-np.inf))
    halfway = (float(f32) + float(other)) / 2
    return halfway, (
        f"{name} = {halfway!r}, halfway between float32 {float(f32)!r} and {float(other)!r}"
    )


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
