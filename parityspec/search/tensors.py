"""What the search may generate for tensor models: each sample is a base sample (the typical
one, or one of the data's) with a few moves, each an element of an input set to a value, or a
whole input scaled or filled, and each saying what kind of input it is.

Element moves shrink towards element 0 and the typical sample, whole-input moves towards the
smallest factor: hypothesis's order of simplicity is again "as little moved as possible"."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

from parityspec.search.space import BASE_ROWS, BEYOND_GRID, EXTREMES, Generated, Move

SCALES = (2.0, 4.0, 8.0, 16.0, 64.0, 256.0, 1024.0, -1.0, -4.0, 0.5)
"""Factors a whole input is multiplied by: its values then reach beyond the data's range."""
WHAT = "\x00"
"""Stands in a label for what a value is put in (an element, a whole input)."""


@dataclass
class TensorInput:
    """One model input, typed and ranged by the data's sample."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    lo: float
    hi: float
    typical: np.ndarray
    """One sample: each element's median over the data (rounded for integers, the majority
    for flags)."""
    missing_ok: bool = False
    _strategies: dict[str, st.SearchStrategy[Any]] = field(default_factory=dict, repr=False)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def kind(self) -> str:
        return "bool" if self.dtype.kind == "b" else "int" if self.dtype.kind in "iu" else "float"

    def kinds(self) -> list[str]:
        if self.kind == "bool":
            return ["flip"]
        kinds = ["in_range", "beyond", "fill"]
        if self.kind == "float":
            kinds += ["extreme", "scale"] + (["missing"] if self.missing_ok else [])
        return kinds

    def element(self, index: int) -> str:
        where = np.unravel_index(index, self.shape) if self.shape else ()
        return f"{self.name}[{', '.join(str(int(i)) for i in where)}]"

    def values(self, kind: str) -> st.SearchStrategy[tuple[float, str]]:
        """A value for one element or for every element of the input, and its label with
        WHAT standing for what it is put in. Built once per kind: hypothesis validates each
        new strategy, which would cost more than the models' predictions."""
        if kind not in self._strategies:
            self._strategies[kind] = self._values(kind)
        return self._strategies[kind]

    def reach(self, base: dict[str, np.ndarray], factor: float) -> str:
        """Where a scaled base sample's values go, against the data's range."""
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = (base[self.name] * factor).astype(self.dtype).astype(np.float64)
        low, high = float(np.min(scaled)), float(np.max(scaled))
        where = "beyond" if low < self.lo or high > self.hi else "within"
        seen = f"the observed range {self.lo:.6g} to {self.hi:.6g}"
        return f", values {low:.6g} to {high:.6g}, {where} {seen}"

    def strategy(self, what: str) -> st.SearchStrategy[Any]:
        """`kinds`: a kind of move; `index`: an element."""
        key = f"<{what}>"
        if key not in self._strategies:
            self._strategies[key] = (
                st.sampled_from(self.kinds()) if what == "kinds" else st.integers(0, self.size - 1)
            )
        return self._strategies[key]

    def _values(self, kind: str) -> st.SearchStrategy[tuple[float, str]]:
        lo, hi, seen = self.lo, self.hi, f"the observed range {self.lo:.6g} to {self.hi:.6g}"
        if kind == "missing":
            return st.just((math.nan, f"NaN in {WHAT}"))
        if kind == "extreme":
            return st.sampled_from([(self._cast(v), f"{WHAT} = {text}") for v, text in EXTREMES])
        if kind == "flip":
            return st.just((0.0, f"{WHAT} flipped"))  # the value is read from the base
        if kind == "beyond":
            span = max(hi - lo, abs(hi), abs(lo), 1.0)
            if self.kind == "int":
                offsets = st.integers(1, max(math.ceil(4 * span), 1))
                values = st.one_of(offsets.map(lambda d: hi + d), offsets.map(lambda d: lo - d))
            else:
                # As for table columns: a grid 1/16 span apart beside hypothesis's floats.
                steps = [k * span / BEYOND_GRID for k in range(1, 4 * BEYOND_GRID + 1)]
                grid = st.sampled_from([hi + d for d in steps] + [lo - d for d in steps])
                above = st.floats(hi, hi + 4 * span, exclude_min=True)
                below = st.floats(lo - 4 * span, lo, exclude_max=True)
                values = st.one_of(grid, above, below)
            return values.map(self._outside).map(lambda v: (v, f"{WHAT} = {v!r}, beyond {seen}"))
        if self.kind == "int":
            within = st.integers(math.ceil(lo), math.floor(hi)).map(float)
        else:
            within = st.floats(lo, hi, allow_nan=False)
        return within.map(self._cast).map(lambda v: (v, f"{WHAT} = {v!r}, within {seen}"))

    def _outside(self, value: float) -> float:
        """`value` in the data's type, still beyond the range: a float just past it can round
        back onto its end in float32."""
        cast = self._cast(value)
        if self.lo <= cast <= self.hi:
            above = value > self.hi
            end = np.asarray(self.hi if above else self.lo).astype(self.dtype)
            if self.kind == "int":
                return float(end) + (1.0 if above else -1.0)
            towards = np.asarray(np.inf if above else -np.inf).astype(self.dtype)
            return float(np.nextafter(end, towards))
        return cast

    def _cast(self, value: float) -> float:
        """The value the model is fed: the data's type rounds it (float32, an integer)."""
        if self.kind == "int":
            info = np.iinfo(self.dtype)
            return float(min(max(round(value), info.min), info.max))
        with np.errstate(over="ignore"):
            return float(np.asarray(value).astype(self.dtype))


class TensorSpace:
    """Samples of a tensor model's inputs, typed and ranged by the data's."""

    def __init__(self, sample: dict[str, np.ndarray], max_moves: int) -> None:
        self.order = list(sample)
        self.inputs = [_input(name, np.asarray(values)) for name, values in sample.items()]
        self.columns = [i for i in self.inputs if i.size]
        self.max_moves = max(1, max_moves)
        rows = len(next(iter(sample.values()))) if sample else 0
        picked = np.unique(np.linspace(0, rows - 1, min(BASE_ROWS, rows), dtype=int))
        typical = {i.name: i.typical for i in self.inputs}
        self.bases: list[dict[str, np.ndarray]] = [typical] + [
            {name: np.asarray(values[k]) for name, values in sample.items()} for k in picked
        ]
        self.base_rows = [int(k) for k in picked]
        self._bases = st.integers(0, len(self.bases) - 1)
        self._count = st.integers(1, self.max_moves)
        self._tensor = st.integers(0, max(len(self.columns) - 1, 0))
        self._scales = st.sampled_from(SCALES)
        self._fills = st.sampled_from(["in_range", "beyond"])

    def strategy(self, rows: int) -> st.SearchStrategy[list[Generated]]:
        return st.lists(st.composite(self._sample)(), min_size=rows, max_size=rows)

    def _sample(self, draw: Any) -> Generated:
        base = draw(self._bases)
        moves = {}
        for _ in range(draw(self._count)):
            tensor = self.columns[draw(self._tensor)]
            kind = draw(tensor.strategy("kinds"))
            if kind == "scale":
                factor = draw(self._scales)
                label = (
                    f"{tensor.name} scaled by {factor:g}{tensor.reach(self.bases[base], factor)}"
                )
                move = Move(tensor.name, factor, kind, label)
            elif kind == "fill":
                value, label = draw(tensor.values(draw(self._fills)))
                what = f"every element of {tensor.name}"
                move = Move(tensor.name, value, kind, label.replace(WHAT, what))
            else:
                index = draw(tensor.strategy("index"))
                value, label = draw(tensor.values(kind))
                move = Move(
                    tensor.name, value, kind, label.replace(WHAT, tensor.element(index)), index
                )
            moves[(move.column, move.index)] = move  # the same element moved twice: the last
        ordered = sorted(moves.values(), key=lambda m: (self.order.index(m.column), _slot(m)))
        return Generated(base, tuple(ordered))

    def values(self, row: Generated) -> dict[str, np.ndarray]:
        """The sample's inputs: whole-input moves first, then elements (as ordered)."""
        values = {name: np.array(array, copy=True) for name, array in self.bases[row.base].items()}
        for move in row.moves:
            array = values[move.column]
            flat = array.reshape(-1)
            if move.kind == "scale":
                with np.errstate(over="ignore", invalid="ignore"):
                    values[move.column] = (array * move.value).astype(array.dtype)
            elif move.kind == "fill":
                flat[:] = move.value
            elif move.kind == "flip":
                flat[move.index] = not flat[move.index]
            else:
                flat[move.index] = move.value
        return values

    def batch(self, rows: list[Generated]) -> dict[str, np.ndarray]:
        samples = [self.values(r) for r in rows]
        return {name: np.stack([s[name] for s in samples]) for name in self.order}

    def moved(self, move: Move) -> str:
        """What a move changed: an element (`image[0, 3, 4]`), or a whole input."""
        if move.index is None:
            return move.column
        return next(t for t in self.inputs if t.name == move.column).element(move.index)

    def base_name(self, base: int) -> str:
        return "the typical sample" if base == 0 else f"data row {self.base_rows[base - 1]}"

    def features(self, row: Generated) -> dict[str, Any]:
        """For a report: small inputs in full, larger ones by type and shape, and each moved
        element's value."""
        values = self.values(row)
        shown: dict[str, Any] = {}
        for tensor in self.inputs:
            array = values[tensor.name]
            if array.size <= 16:
                shown[tensor.name] = [_plain(v) for v in array.reshape(-1)]
            else:
                shown[tensor.name] = f"<{array.dtype} {list(array.shape)}>"
        for move in row.moves:
            if move.index is not None:
                element = values[move.column].reshape(-1)[move.index]
                shown[self.moved(move)] = _plain(element)
        return shown


def _slot(move: Move) -> int:
    return -1 if move.index is None else move.index


def _input(name: str, values: np.ndarray) -> TensorInput:
    sample = values.reshape(len(values), -1) if len(values) else values.reshape(0, -1)
    shape = tuple(int(d) for d in values.shape[1:])
    if values.dtype.kind == "b":
        typical = (sample.mean(axis=0) >= 0.5) if len(sample) else np.zeros(sample.shape[1], bool)
        return TensorInput(name, shape, values.dtype, 0.0, 1.0, typical.reshape(shape))
    present = sample.astype(np.float64)
    finite = present[np.isfinite(present)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    with np.errstate(all="ignore"):
        median = np.nanmedian(present, axis=0) if len(present) else np.zeros(present.shape[1])
    median = np.where(np.isfinite(median), median, 0.0)
    if values.dtype.kind in "iu":
        median = np.round(median)
    typical = median.astype(values.dtype).reshape(shape)
    return TensorInput(name, shape, values.dtype, lo, hi, typical)


def _plain(value: Any) -> Any:
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    number = float(value)
    return number if math.isfinite(number) else str(number)
