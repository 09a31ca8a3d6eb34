"""The ONNX reference evaluator (`onnx.reference`) as an oracle: the graph of another ONNX
backend run op by op in numpy, as the ONNX specification defines each op.

Compared with the scikit-learn or torch model it shows the conversion's own error; compared
with ONNX Runtime on the same graph, the runtime's kernels' error. It is slow, so it predicts
at most `max_rows` rows: a run with more is refused before it evaluates one beyond them."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import Field

from parityspec.backends.base import LoadedModel, Needs, Offer, Verb
from parityspec.backends.onnx import FEATURES_FILE, OnnxRunner
from parityspec.errors import InputError, StepError, first_line
from parityspec.loading import file_sha256
from parityspec.spec.base import Name
from parityspec.spec.models import BackendSpecBase

if TYPE_CHECKING:
    from parityspec.backends.context import RunContext
    from parityspec.data import Features, Rows

KIND = "onnx_reference"
# Not ONNX_GRAPH: checks that look inside such a graph run it in ONNX Runtime.
OFFERS = frozenset({Offer.TABULAR, Offer.TENSORS})
DERIVED_FROM = Needs(all_of=frozenset({Offer.ONNX_GRAPH}))
LIBRARIES = ("onnx",)
MODEL_FILE = "model.onnx"
# onnx's TensorProto element types as ONNX Runtime names them (`onnx.ORT_DTYPES`' keys).
_TYPE_NAMES = {
    1: "tensor(float)",
    11: "tensor(double)",
    10: "tensor(float16)",
    7: "tensor(int64)",
    6: "tensor(int32)",
    9: "tensor(bool)",
    8: "tensor(string)",
}


class Spec(BackendSpecBase):
    kind: Literal["onnx_reference"]
    from_: Name = Field(alias="from")
    """The ONNX backend whose graph is evaluated: an export, a file or an INT8 form."""
    max_rows: Annotated[int, Field(gt=0, le=1_000_000)] = 20_000
    """The most evaluation rows it predicts; a run with more is refused (exit 2) before it
    evaluates a row beyond them. The evaluator runs each op in numpy: the churn MLP's 1,200
    rows take 0.03 s, a convolution network far longer. Compare fewer rows with
    `data.rows`."""


def verb(spec: Spec) -> Verb:
    return "convert"


def source(spec: Spec) -> str | None:
    return spec.from_


def referenced_files(spec: Spec) -> list[tuple[str, str]]:
    return []


def needs_data(spec: Spec) -> bool:
    return False


def make(
    ctx: RunContext, name: str, spec: Spec, source_model: LoadedModel | None, data: Rows | None
) -> LoadedModel:
    import onnx

    from parityspec.artifacts import write_bytes, write_json

    assert source_model is not None  # source(): it is given the `from:` model
    runner: OnnxRunner = source_model.predictor  # DERIVED_FROM: an ONNX graph
    out_dir = ctx.artifact_dir(name)
    # Its own copy of the graph and the source's bindings: the step cache restores them.
    path = out_dir / MODEL_FILE
    graph = onnx.load(str(runner.path))
    unzipped = _without_zipmap(graph)
    write_bytes(path, graph.SerializeToString() if unzipped else runner.path.read_bytes())
    files = {"model": path}
    if runner.inputs:
        features = out_dir / FEATURES_FILE
        write_json(features, {"inputs": [asdict(b) for b in runner.inputs]})
        files[FEATURES_FILE[:-5]] = features
    facts = {
        "evaluator": f"onnx.reference (onnx {onnx.__version__})",
        "max_rows": spec.max_rows,
        "model_sha256": file_sha256(path),
    }
    return reopen(ctx, LoadedModel(name, KIND, None, files, facts), spec)


def _without_zipmap(model: Any) -> bool:
    """The evaluator has no ZipMap, which only repackages a probability tensor as one
    {class: p} map per row: the tensor becomes the graph's output instead (same values, in
    the order of the classifier's `classlabels_*`). Whether the graph changed."""
    import onnx

    graph = model.graph
    zipmaps = [n for n in graph.node if n.op_type == "ZipMap" and n.domain == "ai.onnx.ml"]
    for node in zipmaps:
        graph.node.remove(node)
        for position, output in enumerate(graph.output):
            if output.name == node.output[0]:
                tensor = onnx.helper.make_tensor_value_info(
                    node.input[0], onnx.TensorProto.FLOAT, None
                )
                graph.output.remove(output)
                graph.output.insert(position, tensor)
    return bool(zipmaps)


def reopen(ctx: RunContext, model: LoadedModel, spec: Spec) -> LoadedModel:
    features_file = model.files.get(FEATURES_FILE[:-5])
    features = json.loads(Path(features_file).read_text()) if features_file else None
    path = Path(model.files["model"])
    session = ReferenceSession.open(path, model.backend, spec.max_rows)
    model.predictor = OnnxRunner.on(session, path, ctx, features)
    return model


def predict(model: LoadedModel, batch: Features) -> dict[str, np.ndarray]:
    runner: OnnxRunner = model.predictor
    return runner.run(batch)


def runtime_call(model: LoadedModel, batch: Features) -> Callable[[], object]:
    runner: OnnxRunner = model.predictor
    feeds = runner.feeds(batch)
    return lambda: runner.session.run(None, feeds)


@dataclass(frozen=True)
class _Value:
    """An input or output as ONNX Runtime's session describes it."""

    name: str
    type: str
    shape: list


class ReferenceSession:
    """`onnx.reference.ReferenceEvaluator` behind ONNX Runtime's session methods, so that an
    `OnnxRunner` feeds it exactly as it feeds ONNX Runtime; counts the rows it evaluates."""

    def __init__(self, evaluator: Any, graph: Any, backend: str, max_rows: int):
        self.evaluator, self.backend, self.max_rows = evaluator, backend, max_rows
        self.rows = 0
        self._inputs = [_value(v) for v in graph.input if v.name not in _initializers(graph)]
        self._outputs = [_value(v) for v in graph.output]

    @classmethod
    def open(cls, path: Path, backend: str, max_rows: int) -> ReferenceSession:
        import onnx
        from onnx.reference import ReferenceEvaluator

        model = onnx.load(str(path))
        try:
            evaluator = ReferenceEvaluator(model)
        except NotImplementedError as error:  # an op it has no implementation of
            raise InputError(
                f"backends.{backend}: the ONNX reference evaluator of onnx {onnx.__version__} "
                f"cannot run this graph: {first_line(error)}",
                hint="the oracle covers the standard ops and most of ai.onnx.ml, not "
                "ONNX Runtime's own (com.microsoft) ops: point it at the graph before they "
                "were added, or compare with the source model instead",
            ) from error
        return cls(evaluator, model.graph, backend, max_rows)

    def get_inputs(self) -> list[_Value]:
        return self._inputs

    def get_outputs(self) -> list[_Value]:
        return self._outputs

    def get_providers(self) -> list[str]:
        return []

    def run(self, names: list[str] | None, feeds: dict[str, np.ndarray]) -> list[Any]:
        rows = len(next(iter(feeds.values()))) if feeds else 0
        if self.rows + rows > self.max_rows:
            raise InputError(
                f"backends.{self.backend}.max_rows: the reference evaluator predicts at most "
                f"{self.max_rows} rows, and the evaluation rows are more",
                hint="compare fewer rows (data.rows), or raise max_rows: it runs op by op "
                "in numpy, which is slow",
            )
        self.rows += rows
        try:
            return list(self.evaluator.run(names, feeds))
        except Exception as error:
            raise StepError(f"the ONNX reference evaluator failed: {first_line(error)}") from error


def _initializers(graph: Any) -> set[str]:
    return {i.name for i in graph.initializer}


def _value(info: Any) -> _Value:
    tensor = info.type.tensor_type
    dims = [
        d.dim_value if d.HasField("dim_value") else d.dim_param or None for d in tensor.shape.dim
    ]
    return _Value(info.name, _TYPE_NAMES.get(tensor.elem_type, "tensor(float)"), dims)
