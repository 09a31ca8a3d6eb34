"""Export a torch module to one self-contained ONNX file (the torch backend's `export_onnx`,
and the exports the per-layer tests make)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch

from parityspec.errors import InputError


def export_torch_to_onnx(
    module: torch.nn.Module,
    example_inputs: tuple,
    path: str | Path,
    *,
    opset: int = 18,
    dynamo: bool = True,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    dynamic_batch: bool = True,
) -> Path:
    """Export to one self-contained ONNX file with axis 0 of every input dynamic.

    The dynamo exporter (default) records module scopes in node metadata, which per-layer
    comparison needs; its dynamic batch needs an example batch of at least 2 (a batch of 1
    is specialised), and its weights stay inside the file (so at most 2 GB). Inputs keep
    the forward's argument names unless `input_names` is given (legacy exporter: `input_0`,
    `input_1`, ...). Re-exporting the same module gives byte-identical files.
    """
    path = Path(path)
    kwargs: dict[str, Any] = {
        "opset_version": opset,
        "output_names": output_names,
        "dynamo": dynamo,
    }
    if dynamo:
        batch = torch.export.Dim("batch")
        shapes = _batch_shapes(module, len(example_inputs), batch) if dynamic_batch else None
        kwargs.update(
            input_names=input_names, dynamic_shapes=shapes, external_data=False, verbose=False
        )
    else:
        names = input_names or [f"input_{i}" for i in range(len(example_inputs))]
        axes = {name: {0: "batch"} for name in names} if dynamic_batch else None
        kwargs.update(input_names=names, dynamic_axes=axes)
    torch.onnx.export(module, tuple(example_inputs), str(path), **kwargs)
    return path


def _batch_shapes(module: torch.nn.Module, count: int, batch: Any) -> tuple:
    """Axis 0 dynamic for every input, shaped as torch.export matches them to the forward's
    parameters: a forward of `*inputs` alone (TabularHead's) takes them as one nested tuple."""
    shapes = tuple({0: batch} for _ in range(count))
    kinds = [p.kind for p in inspect.signature(module.forward).parameters.values()]
    return (shapes,) if kinds == [inspect.Parameter.VAR_POSITIONAL] else shapes


class TabularHead(torch.nn.Module):
    """A tabular task's outputs from the wrapped module's: a regression's prediction (n,),
    or a classifier's probabilities (n, k), the spec's activation applied to logits, a
    binary model's one column p1 widened to (1 - p1, p1). Exported with the module, so the
    ONNX graph returns what the torch backend predicts (what a team serves)."""

    def __init__(self, module: torch.nn.Module, task: str, returns: str, activation: str | None):
        super().__init__()
        self.module, self.task, self.returns, self.activation = module, task, returns, activation

    def forward(self, *features: torch.Tensor) -> torch.Tensor:
        out = self.module(*features)
        if not isinstance(out, torch.Tensor):
            raise InputError(f"a {self.task} torch model must return one tensor, not {type(out)}")
        if out.dim() == 1:
            out = out.unsqueeze(1)
        if out.dim() != 2:
            raise InputError(
                f"the torch model returned shape {list(out.shape)}: expected (rows, k)"
            )
        columns = out.shape[1]
        if self.task == "regression":
            if columns != 1:
                raise InputError(f"a regression torch model returned {columns} columns, not 1")
            return out[:, 0]
        probabilities = self._probabilities(out, columns)
        if columns == 1:
            if self.task != "binary":
                raise InputError("one output column is a binary model's p1; the task is multiclass")
            probabilities = torch.cat([1 - probabilities, probabilities], dim=1)
        elif self.task == "binary" and columns != 2:
            raise InputError(f"a binary torch model returned {columns} columns: expected 1 or 2")
        return probabilities

    def _probabilities(self, out: torch.Tensor, columns: int) -> torch.Tensor:
        if self.returns == "probabilities":
            return out
        activation = self.activation or ("sigmoid" if columns == 1 else "softmax")
        if activation == "sigmoid":
            if columns != 1:
                raise InputError(
                    f"activation: sigmoid takes one logit column; the model returned {columns}",
                    hint="use activation: softmax for one logit per class",
                )
            return torch.sigmoid(out)
        if columns == 1:
            raise InputError(
                "activation: softmax of one logit column is always 1",
                hint="use activation: sigmoid for a binary model's one logit",
            )
        return torch.softmax(out, dim=1)
