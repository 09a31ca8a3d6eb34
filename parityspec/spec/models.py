"""The spec's own models: its sections, and the bases of what the registries add.

`SpecBase` types every spec: its backends and checks as their base models. The models that
validate a spec file, with the discriminated unions of the registered backend kinds and check
types, are assembled from it in `composition`, the one module of this layer that imports the
registries."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from parityspec.spec.base import NAME_PATTERN, FilePath, Name, StrictModel
from parityspec.spec.profiles import ProfileBase, ToleranceOverrides

SklearnDataset = Literal["breast_cancer", "diabetes", "digits", "iris", "wine"]
Task = Literal["binary", "multiclass", "regression", "tensor"]
SKLEARN_DATASETS: tuple[str, ...] = get_args(SklearnDataset)
TASKS: tuple[str, ...] = get_args(Task)
PositiveInt = Annotated[int, Field(gt=0)]
TENSOR_BATCH_SIZE = 4096
# pydantic keeps the length of a dict's key type in the schema but not its pattern.
NAMED_KEYS = {"propertyNames": {"pattern": NAME_PATTERN, "maxLength": 64}}


class Split(StrictModel):
    """Hold out part of the data: models train on the rest and are compared on it."""

    test_size: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    seed: int = 0
    stratify: bool = True
    """Keep class proportions in both parts (classification tasks)."""


class Synthetic(StrictModel):
    """Seeded random tensors shaped by `model.inputs`."""

    rows: Annotated[int, Field(gt=0, le=10_000_000)] = 256
    seed: int = 0
    distribution: Literal["normal", "uniform"] = "normal"


class DataSpec(StrictModel):
    """Where the rows come from: exactly one of `path`, `sklearn` or `synthetic`."""

    path: FilePath | None = None
    """A CSV, Parquet or NPZ file, relative to the spec file; or many Parquet files: a
    directory (hive-partitioned or not) or a glob, read shard by shard (row groups)."""
    format: Literal["csv", "parquet", "npz"] | None = None
    """Defaults to the file's suffix."""
    sklearn: SklearnDataset | None = None
    """A data set bundled with scikit-learn, by name."""
    synthetic: Synthetic | None = None
    target: str | None = None
    """The column (or NPZ array) holding the ground truth; sklearn data sets bring their own."""
    features: list[str] | None = None
    """The feature columns, in order; default: every column but the target."""
    split: Split | None = None
    """Without a split, every row is used for training (if any) and for comparing."""
    rows: PositiveInt | None = None
    """Use at most this many rows (the first ones), before splitting."""
    batch_size: Annotated[int, Field(gt=0, le=1_000_000)] = 65_536
    """Rows per batch; default 65,536 for table rows, 4,096 when `model.task` is `tensor`
    (a batch of images holds far more values). A backend with `serve_batch_size` predicts
    in batches of its own size; the data's batches are then a multiple of it."""

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        given = [k for k in ("path", "sklearn", "synthetic") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of path, sklearn, synthetic (got {', '.join(given) or 'none'})"
            )
        return self


class TensorSpec(StrictModel):
    """One model input or output; the batch axis is implicit and dynamic."""

    name: Name
    shape: list[PositiveInt] = []
    """The shape of one sample, without the batch axis."""
    dtype: Literal["float32", "float16", "bfloat16", "int64", "int32", "bool"] = "float32"


class ModelSpec(StrictModel):
    """What the model does: it decides which checks make sense."""

    task: Task
    threshold: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    """The decision threshold on the positive class probability (binary tasks)."""
    probabilities: bool = True
    """Whether the classifier predicts class probabilities. `false` for classifiers without
    `predict_proba` (LinearSVC, RidgeClassifier, Perceptron, SGD with hinge loss, one-vs-one
    wrappers): they are compared on their own labels (`label_agreement`) and decision
    scores (`score_parity`); checks reading probabilities are refused."""
    inputs: list[TensorSpec] | None = None
    """Tensor inputs (task `tensor`); tabular models take the data's feature columns."""
    outputs: list[Name] | None = None
    """Names of the tensor outputs, in the order the model returns them."""
    classes: Annotated[list[int | str], Field(min_length=2)] | None = None
    """A classifier's classes in the order of its probability columns, for models that do not
    say them (a torch classifier); a model's own classes must agree with them."""


class ReportSpec(StrictModel):
    dir: str = "reports"
    """Where report files go, relative to the spec file; `--out` overrides it."""
    formats: list[str] = ["json", "markdown"]
    """The report files to write, by format name (the registered report formats)."""
    templates: FilePath | None = None
    """A directory of Jinja templates overriding the built-in ones, file by file."""
    worst_samples: Annotated[int, Field(ge=0, le=100)] = 5
    """How many worst samples each comparison lists, with their feature values."""


def _swept_fields_may_be_unset(schema: dict[str, Any]) -> None:
    """In the published schema, a required field (`path`, `module`) may instead be swept:
    listed in `matrix`, which gives it its values."""
    swept = [f for f in schema.get("required", []) if f != "kind"]
    if not swept:
        return
    schema["required"] = [f for f in schema["required"] if f not in swept]
    schema.setdefault("allOf", []).extend(
        {
            "anyOf": [
                {"required": [field]},
                {"required": ["matrix"], "properties": {"matrix": {"required": [field]}}},
            ]
        }
        for field in swept
    )


class BackendSpecBase(StrictModel):
    """A backend in the spec; each kind's model narrows `kind` to its own name."""

    model_config = ConfigDict(json_schema_extra=_swept_fields_may_be_unset)

    kind: str
    serve_batch_size: Annotated[int, Field(gt=0, le=1_000_000)] | None = None
    """Rows per call when this model is served: its predictions then use batches of exactly
    this many rows (the last one shorter) whatever `data.batch_size`. It matters where
    outputs depend on the batch: dynamic INT8 computes its activation scales per batch, so
    its figures hold for one batch size. Default: `data.batch_size`."""
    matrix: dict[str, Annotated[list[Any], Field(json_schema_extra={"minItems": 1})]] | None = None
    """A sweep: each named field of this backend takes each listed value, and the backend
    becomes one per combination (`int8[method=static,per_channel=true]`), as do the
    backends made from it and the checks naming them."""
    exclude: list[dict[str, Any]] | None = None
    """Combinations of `matrix` not to run, each given by some of its fields' values."""

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Without an unused matrix (a backend's cache keys stay as they were), and with a
        swept field in the matrix only (at load it holds the first value)."""
        dumped = handler(self)
        if isinstance(dumped, dict):
            for key in ("matrix", "exclude", *(self.matrix or {})):
                if key in ("matrix", "exclude") and dumped.get(key) is not None:
                    continue
                dumped.pop(key, None)
        return dumped


class CheckSpecBase(ToleranceOverrides):
    """A check in the spec. A check type with tolerances names them with
    `class Spec(CheckSpecBase, tolerances=Tolerances)`: each becomes an optional field of the
    spec that overrides the check's profile."""

    id: Name
    """A unique id: it names the check in reports and on the command line (`--check`)."""
    between: Annotated[list[Name], Field(min_length=2, max_length=2)]
    """Two backends: the reference first, then the one under test."""
    profile: Name = "default"
    """The tolerance profile; fields set on the check itself override it."""
    description: str | None = None
    type: str


class SpecBase(StrictModel):
    """A parityspec file: what to compare, how, and how strictly."""

    parityspec: Literal[1]
    """The spec format version."""
    name: Name
    """Names the report; letters, digits, `_`, `-` and `.`."""
    description: str | None = None
    data: DataSpec
    model: ModelSpec
    backends: Annotated[
        dict[Name, BackendSpecBase], Field(min_length=1, json_schema_extra=NAMED_KEYS)
    ]
    """Each backend by name: a model in one form (scikit-learn, ONNX, INT8, PyTorch)."""
    profiles: Annotated[dict[Name, ProfileBase], Field(json_schema_extra=NAMED_KEYS)] = {}
    """User tolerance profiles, beside the built-in strict, default and lenient."""
    checks: Annotated[list[CheckSpecBase], Field(min_length=1)]
    """What to compare; each check names two backends and its tolerance profile."""
    report: ReportSpec = ReportSpec()
    # The expansion of its backend matrices (`spec.matrix.Sweep`), set at load.
    _sweep: Any = PrivateAttr(default=None)

    @model_serializer(mode="wrap")
    def _document(self, handler: SerializerFunctionWrapHandler) -> Any:
        """A swept spec dumps as written: its matrices, not the backends they made."""
        return handler(self._sweep.document if self._sweep is not None else self)

    @model_validator(mode="before")
    @classmethod
    def _tensor_batch_size(cls, raw: Any) -> Any:
        """Tensor rows get a smaller default batch (see `DataSpec.batch_size`)."""
        data, model = (raw.get(k) if isinstance(raw, dict) else None for k in ("data", "model"))
        tensor = isinstance(model, dict) and model.get("task") == "tensor"
        if tensor and isinstance(data, dict) and "batch_size" not in data:
            return {**raw, "data": {**data, "batch_size": TENSOR_BATCH_SIZE}}
        return raw

    def prediction_batch_size(self) -> int:
        """Rows per batch of the pass that predicts: `data.batch_size`, cut to a multiple of
        every backend's `serve_batch_size` (their least common multiple when it is larger),
        so that each backend's own batches never straddle two of the pass's."""
        served = [b.serve_batch_size for b in self.backends.values() if b.serve_batch_size]
        if not served:
            return self.data.batch_size
        step = math.lcm(*served)
        return max(step, self.data.batch_size // step * step)
