"""PyTorch: a module built by `file.py:function`, optional state dict, eval mode."""

from __future__ import annotations

import copy
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

from parityspec.backends.base import LoadedModel, Offer, Verb, tensor_output_names
from parityspec.errors import InputError, first_line
from parityspec.loading import load_callable
from parityspec.spec.base import CallableRef, FilePath
from parityspec.spec.models import BackendSpecBase

if TYPE_CHECKING:
    import torch

    from parityspec.backends.context import RunContext
    from parityspec.backends.onnx import Spec as OnnxSpec
    from parityspec.data import Rows

KIND = "torch"
OFFERS = frozenset({Offer.TENSORS, Offer.LAYERS})
LIBRARIES = ("torch",)
DEFAULT_OPSET = 18
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
    module = module.eval().to(device=spec.device, dtype=getattr(torch, spec.precision))
    facts = {
        "module": type(module).__name__,
        "device": spec.device,
        "precision": spec.precision,
        "output_names": ctx.spec.model.outputs,
    }
    return LoadedModel(name, KIND, module, facts=facts)


def runtime_call(model: LoadedModel, batch: dict[str, np.ndarray]) -> Callable[[], object]:
    """The module's forward under inference mode, the tensors made beforehand."""
    import torch

    module: torch.nn.Module = model.predictor
    tensors = _tensors(module, batch)

    def forward() -> object:
        with torch.inference_mode():
            return module(*tensors)

    return forward


def predict(model: LoadedModel, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import torch

    module: torch.nn.Module = model.predictor
    tensors = _tensors(module, batch)
    with torch.inference_mode():
        outputs = module(*tensors)
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
    # torch serves tensor tasks (OFFERS): its rows are named arrays.
    features = cast("dict[str, np.ndarray]", data.features)
    example = tuple(
        torch.from_numpy(np.asarray(a[:2], dtype=np.float32)) for a in features.values()
    )
    try:
        return export_torch_to_onnx(
            module,
            example,
            out_dir / "model.onnx",
            opset=onnx_spec.opset or DEFAULT_OPSET,
            dynamo=onnx_spec.exporter == "dynamo",
            input_names=list(features),
            output_names=ctx.spec.model.outputs,
        )
    except Exception as error:
        raise InputError(f"torch.onnx.export failed: {first_line(error)}") from error


def quiet_exporter() -> None:
    """The dynamo exporter logs notes (missing torchvision ops, deprecations) that are not
    about the user's model; its errors still surface as exceptions."""
    import logging
    import warnings

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    logging.getLogger("torch._dynamo").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\..*|copyreg")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\..*")


def _tensors(module: Any, batch: dict[str, np.ndarray]) -> list[Any]:
    import torch

    parameter = next(module.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None else torch.float32
    return [_tensor(array, device, dtype) for array in batch.values()]


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
