"""Small repairs and facts about ONNX graphs that several backends need."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from onnx import ModelProto

QUANTIZED_OP_TYPES = {
    "DynamicQuantizeLinear",
    "MatMulInteger",
    "ConvInteger",
    "QuantizeLinear",
    "DequantizeLinear",
    "QLinearMatMul",
    "QLinearConv",
    "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat",
    "QGemm",
}


def deduplicate_opsets(model: ModelProto) -> None:
    """Keep one opset entry per domain, the highest version.

    skl2onnx can list the default domain twice; onnxruntime.quantization then fails with
    'Failed to find proper ai.onnx domain' (FINDINGS).
    """
    highest: dict[str, int] = {}
    for entry in model.opset_import:
        domain = "" if entry.domain == "ai.onnx" else entry.domain
        highest[domain] = max(highest.get(domain, 0), entry.version)
    del model.opset_import[:]
    for domain, version in sorted(highest.items()):
        model.opset_import.add(domain=domain, version=version)


def count_quantized_ops(model: ModelProto) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type in QUANTIZED_OP_TYPES:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))
