"""PyTorch: a module built by `file.py:function`, optional state dict, eval mode.

Tensor tasks feed named arrays to the forward's arguments. Tabular tasks (binary,
multiclass, regression) feed the feature columns, in the data's order, as one float32 tensor
(rows x features) or one (rows x 1) tensor per column (`feed`), and turn what the forward
returns into the tabular outputs (`torch_export.TabularHead`): the same head runs in torch and
is exported to ONNX."""

from __future__ import annotations

import copy
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import model_validator

from parityspec.backends.base import LoadedModel, Offer, Verb, tensor_output_names
from parityspec.errors import InputError, first_line
from parityspec.loading import load_callable
from parityspec.spec.base import CallableRef, FilePath
from parityspec.spec.models import BackendSpecBase

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from parityspec.backends.context import RunContext
    from parityspec.backends.onnx import Spec as OnnxSpec
    from parityspec.data import Features, Rows

KIND = "torch"
OFFERS = frozenset({Offer.TABULAR, Offer.TENSORS, Offer.LAYERS})
LIBRARIES = ("torch",)
DEFAULT_OPSET = 18
TABULAR_INPUT = "features"
PRECISIONS = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}


class Spec(BackendSpecBase):
    kind: Literal["torch"]
    module: CallableRef
    """`file.py:function` returning a `torch.nn.Module`, called with no arguments."""
    state_dict: FilePath | None = None
    """Weights for the module (loaded with `weights_only=True`: no code runs)."""
    device: Literal["cpu", "cuda"] = "cpu"
    precision: Literal["float32", "float16", "bfloat16"] = "float32"
    """The module's floating point type; outputs are compared in float64 either way."""
    feed: Literal["matrix", "columns"] = "matrix"
    """Tabular tasks: the forward takes one float32 tensor of every feature column (rows x
    features; the ONNX input `features`), or one (rows x 1) tensor per column, in column
    order (ONNX inputs named after the columns)."""
    returns: Literal["logits", "probabilities"] = "logits"
    """Classification tasks: what the forward returns, one row per sample: one column (the
    positive class, binary only) or one column per class."""
    activation: Literal["sigmoid", "softmax"] | None = None
    """For `returns: logits`: sigmoid (one column: p1, and p0 = 1 - p1) or softmax (one
    column per class). Default: sigmoid for one column, softmax for several. The ONNX export
    includes it, so the graph returns probabilities."""

    @model_validator(mode="after")
    def _activation_of_logits(self) -> Spec:
        if self.activation is not None and self.returns != "logits":
            raise ValueError("activation applies to logits only (returns: logits)")
        return self


def verb(spec: Spec) -> Verb:
    return "build"


def source(spec: Spec) -> str | None:
    return None


def referenced_files(spec: Spec) -> list[tuple[str, str]]:
    files = [("module", spec.module.rpartition(":")[0])]
    return files + ([("state_dict", spec.state_dict)] if spec.state_dict else [])


def needs_data(spec: Spec) -> bool:
    return False


def make(
    ctx: RunContext, name: str, spec: Spec, source_model: LoadedModel | None, data: Rows | None
) -> LoadedModel:
    import torch

    if spec.device == "cuda" and not torch.cuda.is_available():
        raise InputError("device: cuda was asked for but CUDA is not available", hint="use cpu")
    module = load_callable(spec.module, ctx.spec_dir)()
    if not isinstance(module, torch.nn.Module):
        raise InputError(f"{spec.module} returned {type(module).__name__}, not a torch.nn.Module")
    if spec.state_dict:
        _apply_state_dict(module, ctx.resolve(spec.state_dict), spec.state_dict)
    task = ctx.spec.model.task
    _require_fields_of(task, spec)
    if task in ("binary", "multiclass") and not ctx.spec.model.probabilities:
        raise InputError(
            "a torch classifier returns probabilities (or logits the backend turns into "
            "them), but model.probabilities is false",
            hint="remove `probabilities: false` from model",
        )
    if task in ("binary", "multiclass"):
        _require_logits(module, spec)
    if task != "tensor":
        from parityspec.backends.torch_export import TabularHead

        module = TabularHead(module, task, spec.returns, spec.activation)
    module = module.eval().to(device=spec.device, dtype=getattr(torch, spec.precision))
    facts: dict[str, Any] = {
        "module": type(module).__name__,
        "device": spec.device,
        "precision": spec.precision,
        "output_names": ctx.spec.model.outputs,
    }
    if task != "tensor":
        facts |= {
            "task": task,
            "feed": spec.feed,
            "returns": spec.returns,
            "activation": spec.activation,
        }
    if ctx.spec.model.classes:
        facts["classes"] = list(ctx.spec.model.classes)
    return LoadedModel(name, KIND, module, facts=facts)


def runtime_call(model: LoadedModel, batch: Features) -> Callable[[], object]:
    """The module's forward under inference mode, the tensors made beforehand."""
    import torch

    module: torch.nn.Module = model.predictor
    tensors = _tensors(module, batch, model.facts.get("feed"))

    def forward() -> object:
        with torch.inference_mode():
            return module(*tensors)

    return forward


def predict(model: LoadedModel, batch: Features) -> dict[str, np.ndarray]:
    import torch

    module: torch.nn.Module = model.predictor
    tensors = _tensors(module, batch, model.facts.get("feed"))
    with torch.inference_mode():
        outputs = module(*tensors)
    if not isinstance(batch, dict):  # a tabular task: TabularHead returned one tensor
        values = outputs.detach().to("cpu", torch.float64).numpy()
        key = "prediction" if model.facts.get("task") == "regression" else "probabilities"
        if key == "probabilities" and model.facts.get("returns") == "probabilities":
            _require_probabilities(values)
        return {key: values}
    outputs = outputs if isinstance(outputs, tuple | list) else (outputs,)
    arrays = [o.detach().to("cpu", torch.float64).numpy() for o in outputs]
    return dict(
        zip(tensor_output_names(model.facts.get("output_names"), len(arrays)), arrays, strict=True)
    )


def model_size(model: LoadedModel) -> int:
    """The bytes of its parameters and buffers, as the module lives in memory."""
    module: torch.nn.Module = model.predictor
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


def export_onnx(
    ctx: RunContext, model: LoadedModel, onnx_spec: OnnxSpec, out_dir: Path, data: Rows
) -> Path:
    """torch.onnx.export (dynamo by default), float32 on the CPU, dynamic batch axis."""
    import torch

    from parityspec.backends.torch_export import export_torch_to_onnx

    module = copy.deepcopy(model.predictor).to("cpu", torch.float32)
    quiet_exporter()
    sample = data.sample()
    if isinstance(sample, dict):
        example = tuple(
            torch.from_numpy(np.asarray(a[:2], dtype=np.float32)) for a in sample.values()
        )
        input_names, output_names = list(sample), ctx.spec.model.outputs
    else:  # the inputs `predict` feeds, the head included
        columns = [str(c) for c in sample.columns]
        feed = model.facts["feed"]
        example = tuple(torch.from_numpy(a) for a in _feature_arrays(sample[:2], feed))
        input_names = columns if feed == "columns" else [TABULAR_INPUT]
        output_names = ["prediction" if ctx.spec.model.task == "regression" else "probabilities"]
    try:
        path = export_torch_to_onnx(
            module,
            example,
            out_dir / "model.onnx",
            opset=onnx_spec.opset or DEFAULT_OPSET,
            dynamo=onnx_spec.exporter == "dynamo",
            input_names=input_names,
            output_names=output_names,
        )
    except Exception as error:
        raise InputError(f"torch.onnx.export failed: {first_line(error)}") from error
    if not isinstance(sample, dict):
        from parityspec.artifacts import write_json
        from parityspec.backends.onnx import FEATURES_FILE

        # The ONNX backend feeds the same columns, in the same order.
        inputs = [
            {"name": name, "dtype": "float32", "columns": [name] if feed == "columns" else columns}
            for name in input_names
        ]
        write_json(out_dir / FEATURES_FILE, {"inputs": inputs, "order": columns, "categories": {}})
    return path


def quiet_exporter() -> None:
    """The dynamo exporter logs notes (missing torchvision ops, deprecations) that are not
    about the user's model; its errors still surface as exceptions."""
    import logging
    import warnings

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    logging.getLogger("torch._dynamo").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\..*|copyreg")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\..*")


def _require_fields_of(task: str, spec: Spec) -> None:
    """A field the task ignores is refused: the author meant something that would not happen."""
    given = {"tensor": ("feed", "returns", "activation"), "regression": ("returns", "activation")}
    ignored = [f for f in given.get(task, ()) if f in spec.model_fields_set]
    if ignored:
        raise InputError(
            f"torch backend: {' and '.join(ignored)} "
            f"{'does' if len(ignored) == 1 else 'do'} not apply to task {task!r}",
            hint="returns and activation describe a classifier's outputs; feed, table rows",
        )


def _require_logits(module: torch.nn.Module, spec: Spec) -> None:
    """An activation on probabilities squeezes them while every parity check still passes."""
    import torch

    last = module[-1] if isinstance(module, torch.nn.Sequential) and len(module) else None
    if spec.returns == "logits" and isinstance(last, torch.nn.Softmax | torch.nn.Sigmoid):
        raise InputError(
            f"{spec.module} ends with {type(last).__name__}: it returns probabilities, "
            "and returns: logits would apply an activation again",
            hint="set returns: probabilities on the torch backend",
        )


def _require_probabilities(values: np.ndarray) -> None:
    """`returns: probabilities` on a net that returns logits: caught by the values."""
    finite = values[np.isfinite(values).all(axis=1)]
    tolerance = 0.01  # bfloat16 rows sum to 1 within a few 1e-3
    outside = (finite < -tolerance).any() or (finite > 1 + tolerance).any()
    if outside or (np.abs(finite.sum(axis=1) - 1) > tolerance).any():
        raise InputError(
            "returns: probabilities, but the torch model returned values outside [0, 1] "
            "or rows that do not sum to 1",
            hint="does it return logits? set returns: logits (and activation if needed)",
        )


def _tensors(module: Any, batch: Features, feed: str | None) -> list[Any]:
    import torch

    parameter = next(module.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None else torch.float32
    arrays = list(batch.values()) if isinstance(batch, dict) else _feature_arrays(batch, feed)
    return [_tensor(array, device, dtype) for array in arrays]


def _feature_arrays(frame: pd.DataFrame, feed: str | None) -> list[np.ndarray]:
    """What a tabular forward takes (`Spec.feed`): the matrix, or its columns."""
    matrix = _feature_matrix(frame)
    if feed == "columns":
        return [np.ascontiguousarray(matrix[:, [i]]) for i in range(matrix.shape[1])]
    return [matrix]


def _feature_matrix(frame: pd.DataFrame) -> np.ndarray:
    """The frame's columns, in its order, as one float32 matrix; text columns refused."""
    text = [str(c) for c in frame.columns if frame[c].dtype.kind not in "biuf"]
    if text:
        raise InputError(
            f"a torch model takes numbers; these feature columns are not numeric: "
            f"{', '.join(text)}",
            hint="encode them as numbers in the data, leave them out with data.features, "
            "or use a scikit-learn pipeline that encodes them",
        )
    matrix = np.ascontiguousarray(frame.to_numpy(dtype=np.float32))
    # A float32 frame lends its own read-only block, which torch.from_numpy warns about.
    return matrix if matrix.flags.writeable else matrix.copy()


def _tensor(array: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(array))
    return (
        tensor.to(device=device, dtype=dtype) if tensor.is_floating_point() else tensor.to(device)
    )


def _apply_state_dict(module: torch.nn.Module, path: Path, shown: str) -> None:
    import torch

    if not path.is_file():
        raise InputError("state dict file does not exist", file=shown)
    if not zipfile.is_zipfile(path):
        raise InputError("not a file written by torch.save", file=shown)
    try:
        weights = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise InputError(f"cannot load state dict: {first_line(error)}", file=shown) from error
    if not isinstance(weights, dict):
        raise InputError(f"holds a {type(weights).__name__}, not a state dict", file=shown)
    missing, unexpected = _key_mismatch(module, weights)
    if missing or unexpected:
        raise InputError(
            f"state dict does not fit the module: missing keys {missing[:5]}, "
            f"unexpected keys {unexpected[:5]}",
            file=shown,
            hint="was it saved from the module that the spec's `module` function builds?",
        )
    try:
        module.load_state_dict(weights)
    except RuntimeError as error:  # same keys, other shapes
        raise InputError(
            f"state dict does not fit the module: {first_line(error)}", file=shown
        ) from error


def _key_mismatch(module: torch.nn.Module, weights: dict) -> tuple[list[str], list[str]]:
    expected = set(module.state_dict())
    return sorted(expected - set(weights)), sorted(set(weights) - expected)
