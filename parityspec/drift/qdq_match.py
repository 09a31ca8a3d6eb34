"""Pair every float tensor of one ONNX graph with its counterpart in a quantized form of it
(issue 16.8): QDQ or QOperator, per-tensor or per-channel, static or dynamic.

Names alone miss the tensors where quantization error is born: a static quantizer drops the
Relu after a Conv (the output's quantization clips it) and renames the Conv's output, and
QOperator replaces the float tensors by integer ones. So nodes are paired by structure: in
graph order, a node of `ref` pairs with the first node of `other` of the same op (or its
QLinear / Q form) that reads the counterparts of its inputs, QuantizeLinear and
DequantizeLinear being see-through (they carry one value, quantized or not). A tensor's
counterpart is then what the consumers in `other` read: the DequantizeLinear output of its
Q/DQ pair, else the float tensor itself, else an integer tensor dequantized by a
DequantizeLinear node added with its scale and zero point. A Relu or Clip without a node
in `other` was folded into its input's quantization: its counterpart is the quantized
input; its input keeps the float value before quantization (QDQ) or, when only the
quantized value exists (QOperator), is carried by the activation's row. A node without a
structural pair keeps a tensor of its name, as dynamic quantization leaves them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import onnx
from onnx import helper

FLOAT_TYPES = {
    onnx.TensorProto.FLOAT,
    onnx.TensorProto.FLOAT16,
    onnx.TensorProto.DOUBLE,
    onnx.TensorProto.BFLOAT16,
}
SEE_THROUGH = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}
FOLDED_ACTIVATIONS = {"Relu", "Clip"}
QUANTIZED_TYPES = {
    onnx.TensorProto.INT8,
    onnx.TensorProto.UINT8,
    onnx.TensorProto.INT16,
    onnx.TensorProto.UINT16,
}
# (scale, zero point) input positions of a quantized op's output.
OUTPUT_QPARAMS = {
    "QuantizeLinear": (1, 2),
    "QLinearConv": (6, 7),
    "QLinearMatMul": (6, 7),
    "QGemm": (7, 8),
    "QLinearAdd": (6, 7),
    "QLinearMul": (6, 7),
    "QLinearConcat": (0, 1),
    "QLinearAveragePool": (3, 4),
    "QLinearGlobalAveragePool": (3, 4),
    "QLinearLeakyRelu": (3, 4),
    "QLinearSigmoid": (3, 4),
    "QLinearSoftmax": (3, 4),
}
DEQUANTIZED = "__dequantized"


@dataclass
class Counterpart:
    """One float tensor of `ref`: `value` in `Matching.model`, or None with `reason`."""

    name: str
    op_type: str
    value: str | None
    reason: str | None = None
    carries: list[str] = field(default_factory=list)


@dataclass
class Matching:
    counterparts: list[Counterpart]
    model: onnx.ModelProto
    """`other` with a DequantizeLinear node for each integer counterpart."""
    dequantized: dict[str, tuple[str, str, str]]
    """{added float value: (integer tensor, scale, zero point)}."""


def match_tensors(
    ref: onnx.ModelProto,
    other: onnx.ModelProto,
    tensors: list[tuple[str, str]],
    types: dict[str, int],
    other_types: dict[str, int],
) -> Matching:
    """`tensors`: (name, op_type) of `ref`'s float data tensors in graph order; `types`,
    `other_types`: {value: elem_type} of each graph."""
    graph = _Graph(other, other_types)
    producers = {name: node for node in ref.graph.node for name in node.output}
    wanted = {name for name, _ in tensors}
    constant = _constant_values(ref)
    logical: dict[str, str] = {i.name: i.name for i in ref.graph.input if i.name in graph.logical}
    folded: dict[str, str] = {}  # activation output -> its input (the pre-activation)
    used: set[int] = set()
    for node in ref.graph.node:
        if all(n in constant for n in node.input if n):
            continue
        inputs = [logical.get(n) for n in node.input if n and n not in constant]
        paired = tuple(i for i in inputs if i is not None)
        pair = graph.pair(node.op_type, paired, used) if len(paired) == len(inputs) else None
        if pair is not None:
            used.add(id(pair))
            for mine, theirs in zip(node.output, pair.output, strict=False):
                logical[mine] = theirs
        elif node.op_type in FOLDED_ACTIVATIONS and len(inputs) == 1 and inputs[0]:
            logical[node.output[0]] = inputs[0]
            folded[node.output[0]] = node.input[0]
        else:
            for name in node.output:
                if name in graph.logical:  # kept by name (dynamic quantization)
                    logical[name] = graph.logical[name]
    counterparts = []
    for name, op_type in tensors:
        counterparts.append(_counterpart(name, op_type, logical, folded, graph, producers))
    _carry_folded(counterparts, folded, wanted)
    return Matching(counterparts, graph.model, graph.dequantized)


def _counterpart(
    name: str,
    op_type: str,
    logical: dict[str, str],
    folded: dict[str, str],
    graph: _Graph,
    producers: dict[str, onnx.NodeProto],
) -> Counterpart:
    value = logical.get(name)
    if value is None:
        return Counterpart(
            name,
            op_type,
            None,
            f"no counterpart in the other model: its producer ({op_type}) was replaced or fused"
            " there",
        )
    pre_activation = name in folded.values()
    if name in folded or not pre_activation:
        view = graph.read_view(value)
        if view is not None:
            return Counterpart(name, op_type, view)
    if graph.is_float(value):
        return Counterpart(name, op_type, value)
    if pre_activation:
        after = next(a for a, before in folded.items() if before == name)
        activation = producers[after].op_type
        quantized_op = graph.producer_op(value)
        return Counterpart(
            name,
            op_type,
            None,
            f"fused with the {activation} after it into {quantized_op} by the quantizer: only"
            f" the quantized value after the {activation} exists, its row {after!r} carries"
            " this tensor",
        )
    return Counterpart(
        name,
        op_type,
        None,
        f"its counterpart {value!r} is neither float nor dequantizable (no scale known)",
    )


def _carry_folded(counterparts: list[Counterpart], folded: dict[str, str], wanted: set) -> None:
    rows = {c.name: c for c in counterparts}
    for after, before in folded.items():
        if after in rows and before in wanted and rows[before].value is None:
            rows[after].carries.append(before)


class _Graph:
    """`other` seen through its Q/DQ nodes: `logical` maps each value to the value it
    carries (a QuantizeLinear or DequantizeLinear output to its input's)."""

    def __init__(self, model: onnx.ModelProto, types: dict[str, int]) -> None:
        self.model = onnx.ModelProto()
        self.model.CopyFrom(model)
        self.types = types
        self.dequantized: dict[str, tuple[str, str, str]] = {}
        self.constant = _constant_values(model)
        self.initializer_types = {i.name: i.data_type for i in model.graph.initializer}
        self.logical: dict[str, str] = {i.name: i.name for i in model.graph.input}
        self.producers = {name: node for node in model.graph.node for name in node.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        self.by_inputs: dict[tuple[str, tuple[str, ...]], list[onnx.NodeProto]] = defaultdict(list)
        self.carriers: dict[str, list[str]] = defaultdict(list)  # logical -> values
        for node in model.graph.node:
            for name in node.input:
                self.consumers[name].append(node)
            if all(n in self.constant for n in node.input if n):
                continue
            if node.op_type in SEE_THROUGH:
                self.logical[node.output[0]] = self.logical.get(node.input[0], node.input[0])
                for name in node.output[1:]:  # a dynamic scale and zero point
                    self.constant.add(name)
            else:
                for name in node.output:
                    self.logical[name] = name
                inputs = tuple(
                    self.logical.get(n, n) for n in node.input if n and n not in self.constant
                )
                self.by_inputs[(_float_op(node.op_type), inputs)].append(node)
        for name, carried in self.logical.items():
            self.carriers[carried].append(name)

    def pair(self, op_type: str, inputs: tuple[str, ...], used: set[int]) -> onnx.NodeProto | None:
        candidates = self.by_inputs.get((op_type, inputs), [])
        return next((node for node in candidates if id(node) not in used), None)

    def is_float(self, value: str) -> bool:
        return self.types.get(value) in FLOAT_TYPES

    def producer_op(self, value: str) -> str:
        node = self.producers.get(value)
        return node.op_type if node is not None else "its quantized op"

    def read_view(self, value: str) -> str | None:
        """The float value consumers read for `value`: a DequantizeLinear output carrying it,
        else, for an integer value with a known scale, one added here."""
        for name in self.carriers.get(value, []):
            node = self.producers.get(name)
            if node is not None and node.op_type == "DequantizeLinear" and self.is_float(name):
                return name
        if self._quantized(value):
            return self._dequantize(value)
        return None

    def _quantized(self, value: str) -> bool:
        """An integer value: by its type, or, where shape inference does not know its
        producer (QLinearAdd and other com.microsoft ops), by its zero point's."""
        if value in self.types:
            return self.types[value] in QUANTIZED_TYPES
        qparams = self._qparams(value)
        return qparams is not None and self.initializer_types.get(qparams[1]) in QUANTIZED_TYPES

    def _dequantize(self, value: str) -> str | None:
        qparams = self._qparams(value)
        if qparams is None:
            return None
        added = value + DEQUANTIZED
        if added not in self.dequantized:
            scale, zero_point = qparams
            self.model.graph.node.append(
                helper.make_node(
                    "DequantizeLinear", [value, scale, zero_point], [added], name=added
                )
            )
            self.dequantized[added] = (value, scale, zero_point)
            self.types[added] = onnx.TensorProto.FLOAT
        return added

    def _qparams(self, value: str) -> tuple[str, str] | None:
        """The scale and zero point of an integer value: from its producer, else from a
        consumer reading it as (value, scale, zero point)."""
        node = self.producers.get(value)
        if node is not None and node.op_type in OUTPUT_QPARAMS:
            scale, zero_point = OUTPUT_QPARAMS[node.op_type]
            if len(node.input) > zero_point and node.input[scale]:
                return node.input[scale], node.input[zero_point]
        for consumer in self.consumers.get(value, []):
            if consumer.op_type == "DequantizeLinear" and len(consumer.input) == 3:
                if consumer.input[0] == value and not _has_axis(consumer):
                    return consumer.input[1], consumer.input[2]
            elif consumer.op_type.startswith(("QLinear", "QGemm")):
                inputs = list(consumer.input)
                at = inputs.index(value)
                if len(inputs) > at + 2 and inputs[at + 1] and inputs[at + 2]:
                    return inputs[at + 1], inputs[at + 2]
        return None


def _has_axis(node: onnx.NodeProto) -> bool:
    return any(a.name == "axis" for a in node.attribute)


def _float_op(op_type: str) -> str:
    """The float op a quantized one computes: QLinearConv -> Conv, QGemm -> Gemm."""
    if op_type.startswith("QLinear"):
        return op_type.removeprefix("QLinear")
    if op_type == "QGemm":
        return "Gemm"
    return op_type


def _constant_values(model: onnx.ModelProto) -> set[str]:
    """Initializers and the values computed from them alone (a weight's DequantizeLinear)."""
    constant = {init.name for init in model.graph.initializer}
    for node in model.graph.node:
        if all(name in constant for name in node.input if name):
            constant.update(node.output)
    return constant
