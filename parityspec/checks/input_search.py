"""Input search: hypothesis hunts for the inputs on which two backends disagree most.

Rows are generated from the data's feature schema (numeric values within and beyond the
observed range, missing values where the reference accepts them, rare and unseen categories,
extremes, values float32 rounds differently, and each tree split threshold with its float32
and float64 neighbours), both backends predict them, `target()` steers towards the largest
divergence, and the worst failing row is shrunk to the fewest features moved from a typical
row. It fails when a generated row diverges beyond the profile's tolerances (`abs_tol` for
probabilities, `atol + rtol*|ref|` for other outputs) or the candidate errs on a row the
reference accepts. The rows found are written as a data file a spec can read (`artifacts`).
"""

from __future__ import annotations

import base64
import csv
import io
import math
import zipfile
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import Field

from parityspec.backends import BACKENDS
from parityspec.backends.base import LoadedModel, Offer, Predictions, capabilities
from parityspec.checks import output_parity, probability_parity
from parityspec.checks.base import CheckInputs, CheckResult, CheckSpecBase, Gate, judge
from parityspec.checks.capabilities import KeyedProblem
from parityspec.checks.classes import ClassMismatch, model_classes
from parityspec.errors import InputError
from parityspec.spec.models import SpecBase
from parityspec.spec.profiles import CheckTolerances, NonNegative, tolerance

if TYPE_CHECKING:
    from parityspec.search.engine import Evaluated, SearchResult
    from parityspec.search.space import Generated, TableSpace
    from parityspec.search.tensors import TensorSpace

    Space = TableSpace | TensorSpace

TYPE = "input_search"
LIBRARIES = ("hypothesis",)  # what a search finds depends on its version
TASKS = ("binary", "multiclass", "regression", "tensor")
NEEDS_MODELS = True
NEEDS_PREDICTIONS = False  # it predicts the rows it generates
FILE_STEM = "counterexamples"
ABOVE_ZERO: dict[str, Any] = {"exclusiveMinimum": 0}


def _shared(tolerances: type[CheckTolerances], name: str) -> Any:
    """The same declaration as another check's: the two read one field of a profile."""
    declared = tolerances.declarations()[name]
    return tolerance(**asdict(declared.values), doc=declared.doc)


class Tolerances(CheckTolerances):
    abs_tol: NonNegative = _shared(probability_parity.Tolerances, "abs_tol")
    atol: NonNegative = _shared(output_parity.Tolerances, "atol")
    rtol: NonNegative = _shared(output_parity.Tolerances, "rtol")


class Spec(CheckSpecBase, tolerances=Tolerances):
    """Generates rows from the data's feature schema and the models' split thresholds; fails
    when one diverges beyond the tolerances or the candidate errs where the reference does
    not."""

    type: Literal["input_search"]
    # Budgets are bounded below in `problems`, which can give a hint; the schema says so too.
    max_examples: Annotated[int, Field(le=100_000, json_schema_extra=ABOVE_ZERO)] = 200
    """hypothesis examples, each a batch of `rows_per_example` rows."""
    max_seconds: Annotated[
        float, Field(le=86_400, allow_inf_nan=False, json_schema_extra=ABOVE_ZERO)
    ] = 300.0
    """A time bound on the search; the report says whether it or `max_examples` ended it
    (only `max_examples` gives the same rows on every run)."""
    rows_per_example: Annotated[int, Field(gt=0, le=4096)] = 64
    max_moves: Annotated[int, Field(gt=0, le=64)] = 3
    """At most this many features moved from a base row in one generated row."""
    seed: int = 0


def problems(check: Spec, spec: SpecBase) -> list[KeyedProblem]:
    """A search needs a budget to spend, and something to move."""
    hints = {
        "max_examples": "the number of hypothesis examples to run, e.g. 200",
        "max_seconds": "a time bound in seconds, e.g. 300; max_examples alone keeps runs equal",
    }
    return [
        (key, f"{key} must be above 0, got {getattr(check, key)}", hint)
        for key, hint in hints.items()
        if not getattr(check, key) > 0
    ] + _nothing_to_search(spec, None)


def file_problems(check: Spec, spec: SpecBase, spec_dir: Path) -> list[KeyedProblem]:
    """What the files say before anything runs: data with nothing to search, and two
    backends that read different columns (the search feeds both the same rows)."""
    return _nothing_to_search(spec, spec_dir) + _different_inputs(check, spec, spec_dir)


def _nothing_to_search(spec: SpecBase, spec_dir: Path | None) -> list[KeyedProblem]:
    hint = "input_search moves numbers and categories: give it a model that reads one"
    if spec.model.task == "tensor":
        if spec.model.inputs and all(t.dtype == "bool" for t in spec.model.inputs):
            return [("type", "nothing to search: every input in model.inputs is bool", hint)]
        return []
    if spec.data.features == []:
        return [("type", "nothing to search: data.features lists no column", hint)]
    kinds = _data_kinds(spec, spec_dir)
    if kinds is None:
        return []
    features = spec.data.features or [c for c in kinds if c != spec.data.target]
    searched = [c for c in features if kinds.get(c, "number or category") != "flag"]
    if features and not searched:
        return [
            (
                "type",
                f"nothing to search: {spec.data.path} has no numeric and no categorical feature "
                f"column, only flags (true/false): {', '.join(features[:10])}",
                f"{hint}; list such columns in data.features",
            )
        ]
    return []


def _different_inputs(check: Spec, spec: SpecBase, spec_dir: Path) -> list[KeyedProblem]:
    """Columns each side reads, where the spec and its files say so without loading a model:
    a backend made `from` another reads what its root does; a model trained by the spec
    (`train`, `module`) reads the data's feature columns; an XGBoost JSON or LightGBM text
    file names its own."""
    from parityspec.search.schema import model_file_columns

    roots = [_root(spec, name) for name in check.between]
    if None in roots or roots[0] == roots[1]:
        return []  # an unknown backend is reported elsewhere; one root reads one set
    read = []
    for root in roots:
        assert root is not None
        backend = spec.backends[root]
        path = getattr(backend, "path", None)
        if path is None and not capabilities(BACKENDS[backend.kind]).DERIVED_FROM:
            read.append(_data_features(spec, spec_dir))
        else:
            read.append(model_file_columns(backend.kind, spec_dir / path) if path else None)
    first, second = read
    if first is None or second is None or set(first) == set(second):
        return []
    only = [sorted(set(first) - set(second)), sorted(set(second) - set(first))]
    sides = "; ".join(
        f"{check.between[i]} (from {roots[i]}) alone reads {', '.join(only[i][:5]) or 'nothing'}"
        for i in (0, 1)
    )
    return [
        (
            "between",
            f"input_search feeds both backends the same rows, but they read different "
            f"columns: {sides}",
            "search between a model and its own conversion (`from:`), or two models of the "
            "same columns",
        )
    ]


def _root(spec: SpecBase, name: str) -> str | None:
    """The backend a `from` chain starts at."""
    seen = set()
    while name in spec.backends and name not in seen:
        seen.add(name)
        backend = spec.backends[name]
        origin = BACKENDS[backend.kind].source(backend)
        if origin is None:
            return name
        name = origin
    return None


def _data_kinds(spec: SpecBase, spec_dir: Path | None) -> dict[str, str] | None:
    from parityspec.search.schema import data_columns

    if spec_dir is None or spec.data.path is None:
        return None
    path = spec_dir / spec.data.path
    return data_columns(path, spec.data.format or path.suffix.lstrip(".").lower())


def _data_features(spec: SpecBase, spec_dir: Path) -> list[str] | None:
    if spec.data.features is not None:
        return list(spec.data.features)
    kinds = _data_kinds(spec, spec_dir)
    return None if kinds is None else [c for c in kinds if c != spec.data.target]


def run(spec: Spec, tolerances: Tolerances, inputs: CheckInputs) -> CheckResult:
    import pandas as pd  # imported when the check runs: `validate` never loads pandas

    from parityspec.search.engine import search
    from parityspec.search.space import TableSpace
    from parityspec.search.tensors import TensorSpace

    reference, candidate = (inputs.models[b] for b in spec.between)
    sample = inputs.data.sample()
    space: Space
    if isinstance(sample, pd.DataFrame):
        space = TableSpace(sample, spec.max_moves)
    else:
        space = TensorSpace(sample, spec.max_moves)
    if not space.columns:
        raise InputError(
            f"{spec.id}: the data has no numeric and no categorical feature column to search",
            hint="input_search moves numeric values and categories; list them in data.features",
        )
    comparer = _Comparer(spec, tolerances, inputs, reference, candidate, space)
    # Both take the typical row, or the search cannot start: their errors are the run's.
    typical = space.batch([_typical()])
    for model in (reference, candidate):
        comparer.predict(model, typical)
    comparer.accept_missing()
    thresholds: list = []
    unmapped = 0
    if isinstance(space, TableSpace):
        _require_same_columns(reference, candidate, space.order)
        thresholds, unmapped = _thresholds(reference, candidate, space)
        space.add_thresholds(thresholds)
    found = search(
        space,
        comparer.evaluate,
        max_examples=spec.max_examples,
        max_seconds=spec.max_seconds,
        rows_per_example=spec.rows_per_example,
        keep=max(inputs.spec.report.worst_samples, 1),
        seed_value=spec.seed,
    )
    return comparer.result(found, thresholds, unmapped)


class _Comparer:
    """Predicts generated rows on both backends and judges each one."""

    def __init__(
        self,
        spec: Spec,
        tolerances: Tolerances,
        inputs: CheckInputs,
        reference: LoadedModel,
        candidate: LoadedModel,
        space: Space,
    ) -> None:
        self.spec, self.tolerances, self.inputs = spec, tolerances, inputs
        self.reference, self.candidate, self.space = reference, candidate, space
        self.classifier = inputs.spec.model.task in ("binary", "multiclass")
        self.order: np.ndarray | None = None
        self.class_names: list[str] | None = None
        self.failure: str | None = None
        self.alone = {
            m.backend: _batch_dependent(inputs.spec, m.backend) for m in (reference, candidate)
        }

    def predict(self, model: LoadedModel, batch: Any) -> dict[str, np.ndarray]:
        return BACKENDS[model.kind].predict(model, batch)

    def outputs(
        self, model: LoadedModel, batch: Any, rows: int
    ) -> tuple[list[dict[str, np.ndarray] | None], list[str | None]]:
        from parityspec.search.engine import predict_rows

        return predict_rows(
            lambda b: self.predict(model, b), batch, rows, _take, self.alone[model.backend]
        )

    def accept_missing(self) -> None:
        """A missing value is searched in the columns (float tensors) where the reference
        takes one."""
        from parityspec.search.space import Generated, Move

        columns = [c for c in self.space.columns if _missing_value(c) is not _NOT_MISSABLE]
        rows = [
            Generated(0, (Move(c.name, _missing_value(c), "missing", "", _first(c)),))
            for c in columns
        ]
        if not rows:
            return
        outputs, _ = self.outputs(self.reference, self.space.batch(rows), len(rows))
        for column, output in zip(columns, outputs, strict=True):
            column.missing_ok = output is not None and _finite(output)

    def evaluate(self, rows: list[Generated]) -> list[Evaluated | None]:
        batch = self.space.batch(rows)
        ref_out, _ = self.outputs(self.reference, batch, len(rows))
        accepted = [i for i, o in enumerate(ref_out) if o is not None and _finite(o)]
        results: list[Evaluated | None] = [None] * len(rows)
        if not accepted:
            return results
        subset = _subset(batch, accepted)
        cand_out, errors = self.outputs(self.candidate, subset, len(accepted))
        for j, i in enumerate(accepted):
            outputs = ref_out[i]
            assert outputs is not None
            results[i] = self.judge(rows[i], outputs, cand_out[j], errors[j])
        return results

    def judge(
        self,
        row: Generated,
        ref: dict[str, np.ndarray],
        cand: dict[str, np.ndarray] | None,
        error: str | None,
    ) -> Evaluated:
        from parityspec.search.engine import Evaluated

        if cand is None:
            return Evaluated(row, math.inf, ref, {}, error=error, fails=True)
        if self.classifier:
            a = ref["probabilities"]
            b = self._reordered(cand["probabilities"], len(a))
            if a.shape != b.shape:
                return Evaluated(
                    row,
                    math.inf,
                    ref,
                    cand,
                    error=f"shapes differ, {a.shape} vs {b.shape}",
                    fails=True,
                )
            diff = float(np.max(np.abs(a - b))) if np.all(np.isfinite(b)) else math.inf
            return Evaluated(
                row,
                diff,
                {"probabilities": a},
                {"probabilities": b},
                fails=not diff <= self.tolerances.abs_tol,
            )
        worst = 0.0
        for name, a in ref.items():
            other = cand.get(name)
            if other is None or np.shape(a) != np.shape(other):
                return Evaluated(
                    row,
                    math.inf,
                    ref,
                    cand,
                    error=f"output {name!r} missing or of another shape",
                    fails=True,
                )
            worst = max(
                worst, _tolerance_ratio(a, other, self.tolerances.atol, self.tolerances.rtol)
            )
        return Evaluated(row, worst, ref, cand, fails=worst > 1.0)

    def _reordered(self, values: np.ndarray, columns: int) -> np.ndarray:
        if self.class_names is None:
            sides = [
                Predictions(m.backend, {}, classes=m.facts.get("classes"))
                for m in (self.reference, self.candidate)
            ]
            try:
                classes = model_classes(
                    replace(self.inputs, reference=sides[0], candidate=sides[1]), columns
                )
            except ClassMismatch as error:
                raise InputError(f"{self.spec.id}: {error}") from error
            self.order = classes.candidate_order
            self.class_names = classes.names(columns)
        return values if self.order is None else values[..., self.order]

    def result(self, found: SearchResult, thresholds: list, unmapped: int) -> CheckResult:
        shown = ([found.minimal] if found.minimal else []) + [
            e
            for e in found.worst
            if found.minimal is None or e.row.key() != found.minimal.row.key()
        ]
        shown = shown[: max(self.inputs.spec.report.worst_samples, 1)]
        worst = max((e.divergence for e in found.worst), default=0.0)
        errors = [f"{self._input(e)}: {e.error}" for e in found.errors[:3]]
        failures = []
        if found.errors:
            failures.append(
                f"{self.candidate.backend} errs on {len(found.errors)} generated row(s) "
                f"{self.reference.backend} accepts, e.g. {errors[0]}"
            )
        if self.classifier:
            gate = Gate("max_divergence", worst, "<=", "abs_tol", self.tolerances.abs_tol)
        else:
            # The ratio of |diff| to atol + rtol*|ref|: an element breaks the rule above 1.
            gate = Gate("max_tolerance_ratio", worst, "<=", "ratio_limit", 1.0)
        status, reason = judge([gate], extra_failures=failures)
        reason += f"; {found.rows} rows in {found.examples} examples, ended by {found.ended_by}"
        if found.minimal is not None:
            reason += f"; minimal: {self._input(found.minimal)}"
        counts: dict[str, int] = {}
        for t in thresholds:
            counts[t.column] = counts.get(t.column, 0) + 1
        return CheckResult(
            status,
            reason,
            figures={
                "examples": found.examples,
                "rows": found.rows,
                "max_divergence": worst,
                "failing_rows": found.failing,
                "candidate_errors": len(found.errors),
                "rejected_by_reference": found.rejected_by_reference,
                "split_thresholds": len(thresholds),
            },
            tolerances=(
                {"abs_tol": self.tolerances.abs_tol}
                if self.classifier
                else {"atol": self.tolerances.atol, "rtol": self.tolerances.rtol}
            ),
            details={
                "search": {
                    "ended_by": found.ended_by,
                    "max_examples": self.spec.max_examples,
                    "max_seconds": self.spec.max_seconds,
                    "seed": self.spec.seed,
                    "moved_before_shrink": found.moved_before_shrink,
                    "missing_searched_in": [c.name for c in self.space.columns if c.missing_ok],
                    "predicted_row_by_row": sorted(b for b, alone in self.alone.items() if alone),
                    "thresholds_by_column": counts,
                    "splits_not_mapped_to_a_column": unmapped,
                },
                "minimal_counterexample": self._entry(found.minimal, 0) if found.minimal else None,
                "worst_samples": [self._entry(e, i) for i, e in enumerate(shown)],
                "candidate_errors": errors,
                "table": self._table(shown),
            },
            gates=[gate],
        )

    def _input(self, e: Evaluated) -> str:
        return f"{e.row.describe()} (from {self.space.base_name(e.row.base)})"

    def _entry(self, e: Evaluated, index: int) -> dict[str, Any]:
        from parityspec.search.space import TableSpace

        if isinstance(self.space, TableSpace):
            values = self.space.values(e.row)
            features = {name: _cell(values.get(name)) for name in self.space.order}
            moved = {m.column: m.label for m in e.row.moves}
        else:
            features = self.space.features(e.row)
            moved = {self.space.moved(m): m.label for m in e.row.moves}
        return {
            "row": f"#{index + 1}: {self._input(e)}",
            "abs_diff": _number(_abs_diff(e)),
            **({} if self.classifier else {"tolerance_ratio": _number(e.divergence)}),
            "reference": _plain(e.reference),
            "candidate": _plain(e.candidate),
            "error": e.error,
            "moved": moved,
            "features": features,
        }

    def _table(self, shown: list[Evaluated]) -> dict[str, Any]:
        """The rows as a data file: the data's columns in order, and its target column
        holding the reference's prediction (generated rows have no ground truth)."""
        from parityspec.search.space import TableSpace

        if not isinstance(self.space, TableSpace):
            return _tensor_table(self.space, shown)
        data = self.inputs.spec.data
        columns = list(self.space.order)
        rows = [[_cell(self.space.values(e.row).get(c)) for c in columns] for e in shown]
        target = data.target
        if target is not None:
            columns.append(target)
            for row, e in zip(rows, shown, strict=True):
                row.append(self._prediction(e))
        suffix = (data.format or (data.path or "").rpartition(".")[2] or "csv").lower()
        if suffix == "npz" and not _missing_text(rows):
            return {"format": "npz", "columns": columns, "rows": rows}
        # An NPZ read without pickle holds no missing text value: such rows go to a CSV.
        return {
            "format": "parquet" if suffix == "parquet" else "csv",
            "columns": columns,
            "rows": rows,
        }

    def _prediction(self, e: Evaluated) -> Any:
        if self.classifier:
            probabilities = e.reference["probabilities"]
            labels = self.reference.facts.get("classes") or self.class_names
            index = int(np.argmax(probabilities))
            return labels[index] if labels else index
        return _number(float(np.ravel(e.reference["prediction"])[0]))


def _thresholds(
    reference: LoadedModel, candidate: LoadedModel, space: TableSpace
) -> tuple[list, int]:
    from parityspec.search.trees import model_thresholds, onnx_thresholds

    spans = {c.name: (c.lo, c.hi) for c in space.numeric()}
    base = space.batch([_typical()])
    found, unmapped = [], 0
    for model in (reference, candidate):
        offers = capabilities(BACKENDS[model.kind]).offers
        if Offer.ONNX_GRAPH in offers and "model" in model.files:
            bindings = getattr(model.predictor, "inputs", None) or []
            columns_of = {b.name: list(b.columns) for b in bindings}
            found += onnx_thresholds(model.files["model"], columns_of, model.backend)
        else:  # scikit-learn, XGBoost, LightGBM: a model of another family has none
            more, skipped = model_thresholds(model.predictor, base, spans, model.backend)
            found += more
            unmapped += skipped
    return found, unmapped


def _require_same_columns(
    reference: LoadedModel, candidate: LoadedModel, columns: list[str]
) -> None:
    """Both backends must read the data's columns: a model fitted or exported on others
    takes different inputs."""
    for model in (reference, candidate):
        wanted = _columns_read(model)
        missing = [c for c in wanted or [] if c not in columns]
        if missing:
            raise InputError(
                f"backend {model.backend!r} reads columns the data lacks: {', '.join(missing)}",
                hint="input_search needs two backends that take the same inputs",
            )


def _columns_read(model: LoadedModel) -> list[str] | None:
    fitted = getattr(model.predictor, "feature_names_in_", None)
    if fitted is not None:
        return [str(c) for c in fitted]
    bindings = getattr(model.predictor, "inputs", None)
    if isinstance(bindings, list):
        return [c for b in bindings for c in getattr(b, "columns", [])]
    return None


def _typical() -> Generated:
    from parityspec.search.space import Generated

    return Generated(0, ())


_NOT_MISSABLE = object()


def _missing_value(column: Any) -> Any:
    from parityspec.search.space import CategoricalColumn, NumericColumn
    from parityspec.search.tensors import TensorInput

    if isinstance(column, NumericColumn):
        return math.nan
    if isinstance(column, CategoricalColumn):
        return None
    assert isinstance(column, TensorInput)
    return math.nan if column.kind == "float" else _NOT_MISSABLE


def _first(column: Any) -> int | None:
    """A tensor's first element: where a NaN is tried."""
    from parityspec.search.tensors import TensorInput

    return 0 if isinstance(column, TensorInput) else None


def _batch_dependent(spec: SpecBase, backend: str) -> bool:
    """Whether a backend's rows depend on their batch-mates (dynamic INT8 scales each batch
    by its own values): such a model predicts each generated row alone, or one extreme row
    would move every other row of its batch."""
    backend_spec = spec.backends[backend]
    hook = capabilities(BACKENDS[backend_spec.kind]).batch_dependent
    return hook is not None and bool(hook(backend_spec))


def _take(batch: Any, index: int) -> Any:
    return _subset(batch, [index])


def _subset(batch: Any, indices: list[int]) -> Any:
    """Rows of a batch: a frame's, or each tensor's along the batch axis."""
    if isinstance(batch, dict):
        return {name: array[indices] for name, array in batch.items()}
    return batch.iloc[indices].reset_index(drop=True)


def _tensor_table(space: TensorSpace, shown: list[Evaluated]) -> dict[str, Any]:
    """The samples as the arrays of an NPZ file, each array's bytes in base64 (exact, and
    far shorter than a list of numbers for an image)."""
    batch = space.batch([e.row for e in shown])
    arrays = {
        name: {
            "dtype": array.dtype.str,
            "shape": list(array.shape),
            "base64": base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii"),
        }
        for name, array in batch.items()
    }
    return {"format": "npz", "rows": len(shown), "arrays": arrays}


def _finite(outputs: dict[str, np.ndarray]) -> bool:
    return all(np.all(np.isfinite(v)) for v in outputs.values() if np.asarray(v).dtype.kind == "f")


def _abs_diff(e: Evaluated) -> float:
    """The largest |reference - candidate| over the outputs compared; inf where the
    candidate erred, lacks one, or returned NaN/Inf."""
    worst = 0.0
    for name, a in e.reference.items():
        b = e.candidate.get(name)
        if b is None or np.shape(a) != np.shape(b):
            return math.inf
        diff = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
        if diff.size:
            worst = max(worst, float(np.max(diff)) if np.all(np.isfinite(diff)) else math.inf)
    return worst


def _tolerance_ratio(a: np.ndarray, b: np.ndarray, atol: float, rtol: float) -> float:
    """The worst |a - b| / (atol + rtol*|a|): above 1, an element breaks the rule."""
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not np.all(np.isfinite(b64)):
        return math.inf
    diff = np.abs(a64 - b64)
    allowed = atol + rtol * np.abs(a64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(diff == 0, 0.0, diff / allowed)
    return float(np.max(ratio)) if ratio.size else 0.0


def _number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _cell(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _plain(outputs: dict[str, np.ndarray]) -> Any:
    values = [float(v) for o in outputs.values() for v in np.ravel(o)[:16]]
    return [_number(v) for v in values]


def artifacts(entry: dict[str, Any]) -> dict[str, Any]:
    """The rows found, as `counterexamples.json` (their columns and values) and as a data
    file a spec can name as `data.path` (see `counterexample_file`)."""
    table = (entry.get("details") or {}).get("table")
    data_file = counterexample_file(entry)
    if not table or data_file is None:
        return {}
    name, content = data_file
    if "arrays" in table:
        return {name: content}  # the arrays' bytes: the NPZ itself is the readable form
    return {f"{FILE_STEM}.json": table, name: content}


def counterexample_file(entry: dict[str, Any]) -> tuple[str, bytes] | None:
    """The rows found as a data file of the data's kind (CSV or Parquet) that a spec can
    name as `data.path`: its name and bytes; None when nothing was found."""
    table = (entry.get("details") or {}).get("table")
    if not table or not table["rows"]:
        return None
    if table["format"] == "npz" and "arrays" in table:
        return f"{FILE_STEM}.npz", _npz_bytes(table["arrays"])
    if table["format"] == "npz":
        return f"{FILE_STEM}.npz", _npz_bytes(_column_arrays(table["columns"], table["rows"]))
    if table["format"] == "parquet":
        import pandas as pd

        buffer = io.BytesIO()
        pd.DataFrame(table["rows"], columns=table["columns"]).to_parquet(buffer, index=False)
        return f"{FILE_STEM}.parquet", buffer.getvalue()
    # The csv module writes what pandas' to_csv would (a gap as an empty cell), without
    # importing pandas into a run whose every step came from the cache.
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(table["columns"])
    writer.writerows([_csv_cell(value) for value in row] for row in table["rows"])
    return f"{FILE_STEM}.csv", text.getvalue().encode("utf-8")


def _missing_text(rows: list[list[Any]]) -> bool:
    columns = list(zip(*rows, strict=True)) if rows else []
    return any(
        any(isinstance(v, str) for v in column) and any(v is None for v in column)
        for column in columns
    )


def _column_arrays(columns: list[str], rows: list[list[Any]]) -> dict[str, dict[str, Any]]:
    """Table rows as one 1-D array per column, stored as `_npz_bytes` takes them: text as
    unicode, whole numbers as int64, other numbers as float64 (a gap as NaN)."""
    arrays = {}
    for index, name in enumerate(columns):
        values = [row[index] for row in rows]
        if any(isinstance(v, str) for v in values):
            array = np.array([str(v) for v in values])
        elif all(type(v) is int for v in values):
            array = np.array(values, dtype=np.int64)
        else:
            array = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
        arrays[name] = {
            "dtype": array.dtype.str,
            "shape": list(array.shape),
            "base64": base64.b64encode(array.tobytes()).decode("ascii"),
        }
    return arrays


def _npz_bytes(arrays: dict[str, dict[str, Any]]) -> bytes:
    """An NPZ as np.savez writes it, but with a fixed timestamp on each member: the same
    samples give the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, stored in arrays.items():
            flat = np.frombuffer(base64.b64decode(stored["base64"]), dtype=stored["dtype"])
            member = io.BytesIO()
            np.lib.format.write_array(member, flat.reshape(stored["shape"]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()


def _csv_cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value
