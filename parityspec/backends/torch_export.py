"""Export a torch module to one self-contained ONNX file (the torch backend's `export_onnx`,
and the exports the per-layer tests make)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


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
        shapes = tuple({0: batch} for _ in example_inputs) if dynamic_batch else None
        kwargs.update(
            input_names=input_names, dynamic_shapes=shapes, external_data=False, verbose=False
        )
    else:
        names = input_names or [f"input_{i}" for i in range(len(example_inputs))]
        axes = {name: {0: "batch"} for name in names} if dynamic_batch else None
        kwargs.update(input_names=names, dynamic_axes=axes)
    torch.onnx.export(module, tuple(example_inputs), str(path), **kwargs)
    return path
