"""Per-layer drift between a PyTorch module and its ONNX export, or between two ONNX models.

Each compared module's output (the leaves and the modules with computation of their own, see
`compared_paths`), copied by a forward hook, is compared with the ONNX value that the dynamo
exporter's metadata ties to that module; the matched values are exposed as extra graph
outputs. Two ONNX models are paired tensor by tensor through `qdq_match`. Rows stream in
sub-batches sized so that what one sub-batch holds, every layer together, stays under
`SUB_BATCH_BYTES`: each pair is folded into its row's `LayerStats` and
dropped as soon as it is compared, so memory does not grow with the number of layers or rows.
A row is over when its max |diff| exceeds `tolerance + rtol * max |ref|`: the allowance grows
with the layer's own scale, so a faithful export whose activations grow large (where float32
rounding grows with them) is not over.

Each matched row also gets its own error: the part of the ONNX graph between the compared
values upstream of it and its value, run on torch's outputs for those values (or the model's
inputs), against torch's output. It is what the layer adds by itself, inherited drift removed;
the row carries whatever that part computes (a Conv fused into the BatchNorm, a residual Add
in the parent's scope). When drift is found, the origin is the first row whose own error is
over or non-finite, or, for a row without an own figure, whose error is; failing both, the
first row over (drift accumulated from layers each within tolerance).
"""

from __future__ import annotations

import ast
import fnmatch
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import helper, numpy_helper

from parityspec.drift.qdq_match import FLOAT_TYPES, match_tensors
from parityspec.stats import Worst, reduce_rows

NAME_SCOPES = "pkg.torch.onnx.name_scopes"
CLASS_HIERARCHY = "pkg.torch.onnx.class_hierarchy"
# (description, perm) with other == ref.transpose(perm): the layout the other side uses.
LAYOUTS = {
    4: (("NCHW->NHWC", (0, 2, 3, 1)), ("NHWC->NCHW", (0, 3, 1, 2))),
    3: (("(B,C,T)->(B,T,C)", (0, 2, 1)),),
}
SUB_BATCH_BYTES = 64 * 2**20
"""What one sub-batch holds, every layer together: its ONNX values and the copies of torch's
outputs, or the values of both ONNX models."""
PROBE_ROWS = 8
"""Rows run first to learn each row's bytes (and, for torch, the sequence of module calls)."""
# Ops whose output for one row depends on the other rows (dynamic INT8 scales each batch as a
# whole): a model with one is run on the caller's whole batches, as its predictions were.
ROW_COUPLING_OPS = {"DynamicQuantizeLinear", "DynamicQuantizeMatMul", "DynamicQuantizeLSTM"}
CALLS_CHANGED = "the sequence of module calls changed between batches"
NO_SCOPE_REASON = "no ONNX node carries this module's scope"
REMOVED_REASON = "removed by the exporter: a no-op in eval mode"
NO_OP_TYPES = {
    "Identity",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "FeatureAlphaDropout",
}


@dataclass
class LayerRow:
    """One leaf-module call (or ONNX tensor) compared.

    `status`: "ok", "over" (max_abs > `allowed`), "nonfinite" or "unmatched" (see `reason`).
    `layout`: the permutation, e.g. "NCHW->NHWC (0, 2, 3, 1)", under which an over or
    shape-mismatched tensor agrees. `sqnr_db`: 10 log10(sum ref^2 / sum (ref - other)^2).
    """

    name: str
    module_type: str
    onnx_value: str | None
    stats: LayerStats | None
    status: str
    reason: str | None
    layout: str | None
    sqnr_db: float | None
    allowed: float | None = None
    """tolerance + rtol * max |ref|: the largest max |diff| this row may have."""
    own: LayerStats | None = None
    """Its own error: its part of the ONNX graph run on torch's inputs (module docstring)."""
    own_status: str | None = None
    """"ok", "over" or "nonfinite" for `own`, by the same allowance; None without it."""
    carries: list[str] = field(default_factory=list)
    """Rows the exporter fused into this one (a Conv folded into this BatchNorm)."""


@dataclass
class LayerTable:
    """Rows in execution order; `origin`: the first row "over" or "nonfinite"."""

    rows: list[LayerRow]
    origin: str | None
    tolerance: float
    rtol: float = 0.0
    origin_rule: str | None = None
    """How the origin was chosen: "own error", "not isolated" (a row without an own error,
    over), or "first over" (no row's own error is)."""
    own_reason: str | None = None
    """Why no row has an own error, when its isolated parts could not be run."""
    final_nonfinite: tuple[int, int] = (0, 0)
    """Rows with NaN or Inf in the final outputs of the reference and of the ONNX model (its
    plain session): the check reads no predictions, so it judges these itself."""
    exposure_effect: float | None = None
    """max |diff| between the final outputs of the session exposing every compared value and
    of the plain session: exposing values stops some fusions (Conv+Add+Relu), so the rows are
    measured on another graph than the one deployed, and differ from it by about this much."""


class LeafCall(NamedTuple):
    """One call of a leaf module; `name` is the row name ("relu", then "relu#2")."""

    name: str
    path: str
    call: int
    module_type: str
    output_kind: str
    tensor: bool
    row_bytes: float
    """Bytes of one row of its output (0 for a non-tensor output)."""


@dataclass
class _Target:
    name: str
    module_type: str
    onnx_value: str | None
    reason: str | None = None
    carries: list[str] = field(default_factory=list)


def leaf_calls(
    module: torch.nn.Module, inputs: tuple, paths: Collection[str] | None = None
) -> list[LeafCall]:
    """Run `module` once and list every call of a compared module (`paths`; default: the
    leaves), in call order; no output is kept."""
    calls: list[LeafCall] = []
    rows = max(len(inputs[0]), 1)

    def record(name: str, path: str, call: int, leaf: torch.nn.Module, output: object) -> None:
        tensor = _first_tensor(output)
        nbytes = tensor.nbytes / rows if tensor is not None else 0.0
        kind = type(output).__name__
        row = LeafCall(name, path, call, type(leaf).__name__, kind, tensor is not None, nbytes)
        calls.append(row)

    with _leaf_hooks(module, record, paths):
        module(*inputs)
    return calls


def _first_tensor(output: object) -> torch.Tensor | None:
    """The tensor a row compares: the output, or the first item of a tuple output (an
    attention's (output, weights))."""
    if isinstance(output, tuple | list) and output:
        output = output[0]
    return output if isinstance(output, torch.Tensor) else None


def compared_paths(
    module: torch.nn.Module,
    own_nodes: Collection[str],
    depth: int | None = None,
    patterns: Sequence[str] | None = None,
) -> list[str]:
    """The module paths that get rows. By default every leaf, and every other module with
    computation of its own (nodes in its own ONNX scope, `own_nodes`: an attention, whose
    projections are not called as modules, a block's residual Add). `depth`: modules at
    most that deep (a module at the depth is compared whole, its children not). `patterns`
    (fnmatch, on dotted paths): only the modules they match."""
    paths = []
    for path, child in module.named_modules():
        if not path:
            continue
        leaf = next(child.children(), None) is None
        if patterns is not None:
            if any(fnmatch.fnmatchcase(path, p) for p in patterns):
                paths.append(path)
        elif depth is not None:
            level = path.count(".") + 1
            if level == depth or (level < depth and (leaf or path in own_nodes)):
                paths.append(path)
        elif leaf or path in own_nodes:
            paths.append(path)
    return paths


@contextmanager
def _leaf_hooks(
    module: torch.nn.Module,
    on_call: Callable[[str, str, int, torch.nn.Module, object], None],
    paths: Collection[str] | None = None,
) -> Iterator[None]:
    """Within the block, every call of a compared module (`paths`, default the leaves) runs
    `on_call(name, path, call, module, output)` (under no_grad) when it returns: before any
    later op, an in-place ReLU included, can rewrite its output. A module's row comes after
    its children's, as its output does."""
    counts: Counter[str] = Counter()

    def hook(path: str, leaf: torch.nn.Module, output: object) -> None:
        counts[path] += 1
        name = path if counts[path] == 1 else f"{path}#{counts[path]}"
        on_call(name, path, counts[path], leaf, output)

    handles = [
        leaf.register_forward_hook(lambda m, _args, out, p=path: hook(p, m, out))
        for path, leaf in module.named_modules()
        if (path in paths if paths is not None else next(leaf.children(), None) is None)
    ]
    try:
        with torch.no_grad():
            yield
    finally:
        for handle in handles:
            handle.remove()


def subtree_node_groups(model: onnx.ModelProto) -> dict[str, list[list[onnx.NodeProto]]]:
    """Like `module_node_groups`, for a module and everything it calls: one group per run of
    consecutive nodes whose scopes include the module's path."""
    groups: dict[str, list[list[onnx.NodeProto]]] = defaultdict(list)
    current: set[str] = set()
    for node in model.graph.node:
        scopes = _metadata_list(node, NAME_SCOPES)
        if not scopes or len(scopes) < 2:
            continue
        paths = set(scopes[:-1])
        for path in paths:
            if path not in current:
                groups[path].append([])
            groups[path][-1].append(node)
        current = paths
    return dict(groups)


def module_node_groups(model: onnx.ModelProto) -> dict[str, list[list[onnx.NodeProto]]]:
    """Group graph nodes by module path; one group per call, in graph order.

    The module path is the second-to-last `name_scopes` entry (the last is the FX node).
    The exporter emits nodes in execution order, so one call is one run of consecutive
    nodes with the same path; nodes without scope metadata neither start nor end a run.
    """
    groups: dict[str, list[list[onnx.NodeProto]]] = defaultdict(list)
    current = None
    for node in model.graph.node:
        scopes = _metadata_list(node, NAME_SCOPES)
        if not scopes or len(scopes) < 2:
            continue
        if scopes[-2] != current:
            current = scopes[-2]
            groups[current].append([])
        groups[current][-1].append(node)
    if not groups:
        raise ValueError(
            f"no node carries '{NAME_SCOPES}' metadata: export with the dynamo exporter"
            " (export_torch_to_onnx(..., dynamo=True)) for per-layer comparison"
        )
    return dict(groups)


def compare_torch_onnx_layers(
    module: torch.nn.Module,
    onnx_path: str | Path,
    batches: Iterable[tuple[torch.Tensor, ...]],
    *,
    tolerance: float,
    rtol: float = 0.0,
    input_names: list[str] | None = None,
    sub_batch_bytes: int = SUB_BATCH_BYTES,
    depth: int | None = None,
    modules: Sequence[str] | None = None,
) -> LayerTable:
    """Compare every call of the compared modules (`compared_paths`: by default the leaves and
    the modules with computation of their own; `depth`, `modules` choose others) of an eval()
    module with its ONNX value.

    A call is paired with the last node of the k-th node group carrying its module's scope
    (see `module_node_groups`). Rows are unmatched, with a reason, when the module has no
    node, a different number of groups than calls, another class, a non-tensor output or a
    different shape. Rows go through both sides a sub-batch at a time (`SUB_BATCH_BYTES`).
    """
    model = onnx.load(str(onnx_path))
    groups = module_node_groups(model)
    subtrees = subtree_node_groups(model)
    paths = compared_paths(module, groups, depth, modules)
    leaves = {p for p, m in module.named_modules() if next(m.children(), None) is None}
    # A leaf's call is its own nodes; another module's, every node under its scope.
    groups = {p: groups.get(p, []) if p in leaves else subtrees.get(p, []) for p in paths}
    targets: list[_Target] | None = None
    accs: list[_RowAcc] = []
    own: _OwnErrors | None = None
    exposure: _Exposure
    step = 0
    first_index = 0
    torch_nonfinite = 0
    for batch in batches:
        inputs = tuple(batch) if isinstance(batch, tuple | list) else (batch,)
        rows = len(inputs[0])
        if targets is None:
            calls = leaf_calls(module, tuple(t[:PROBE_ROWS] for t in inputs), paths)
            targets = _match_calls(calls, groups)
            session = _exposing_session(model, [t.onnx_value for t in targets if t.onnx_value])
            exposure = _Exposure(model, session)
            _unmatch_unexposed(targets, session)
            names = input_names or [i.name for i in session.get_inputs()]
            accs = [_RowAcc(tolerance, rtol) for _ in targets]
            row_bytes = sum(
                c.row_bytes for c, t in zip(calls, targets, strict=True) if t.onnx_value
            )
            # The sub-batch holds each matched output three times: ONNX's, torch's copy and
            # the isolated layers' (own errors).
            held = 3 * max(row_bytes, 1)
            step = 0 if _couples_rows(model) else max(1, int(sub_batch_bytes // held))
        size = step or max(rows, 1)
        with _torch_threads(1 if size < rows else torch.get_num_threads()):
            for start in range(0, rows, size):
                part = tuple(t[start : start + size] for t in inputs)
                feeds = {n: t.detach().cpu().numpy() for n, t in zip(names, part, strict=True)}
                onnx_values = _run(
                    session, [*exposure.outputs, *(t.onnx_value for t in targets)], feeds
                )
                exposure.update(onnx_values, feeds)
                kept, final = _compare_calls(
                    module, part, targets, accs, onnx_values, first_index + start, paths
                )
                torch_nonfinite += final
                if own is None:  # after one sub-batch: its rows say which values feed it
                    own = _OwnErrors(model, targets, accs, tolerance, rtol)
                own.update(kept, feeds, first_index + start)
        first_index += rows
    table = _table(targets or [], accs, tolerance, rtol)
    if own is not None:
        own.add_to(table)
    table.exposure_effect = exposure.max_abs if targets else None
    table.final_nonfinite = (torch_nonfinite, exposure.nonfinite if targets else 0)
    return table


@contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op threads within the block. A split batch runs on one: its small ops
    gain little from more, and each op's barrier, where a thread waits for the others to be
    scheduled, made the forward 10x slower on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _compare_calls(
    module: torch.nn.Module,
    inputs: tuple,
    targets: list[_Target],
    accs: list[_RowAcc],
    onnx_values: dict[str, np.ndarray],
    first_index: int,
    paths: Collection[str] | None = None,
) -> tuple[dict[int, np.ndarray], int]:
    """Run `module` once, copying each matched call's output as the call returns (an in-place
    op downstream would rewrite it), then fold each into its row, dropping ONNX's side.
    Returns torch's, {target position: output}, for the own errors, and the rows of the
    module's final output with NaN or Inf.

    Not inside the hooks: numpy work between torch's parallel ops, while torch's idle OpenMP
    threads spin, made the forward and the statistics each several times slower."""
    outputs: list[torch.Tensor | None] = []

    def keep(name: str, _path: str, _call: int, _leaf: torch.nn.Module, output: object) -> None:
        position = len(outputs)
        if position >= len(targets) or targets[position].name != name:
            raise RuntimeError(CALLS_CHANGED)
        tensor = _first_tensor(output)
        if targets[position].onnx_value and tensor is not None:
            outputs.append(tensor.detach().clone())
        else:
            outputs.append(None)

    with _leaf_hooks(module, keep, paths):
        final = module(*inputs)
    if len(outputs) != len(targets):
        raise RuntimeError(CALLS_CHANGED)
    kept = {}
    # A module ending in its child shares the child's value: dropped after its last row.
    uses = Counter(t.onnx_value for t in targets if t.onnx_value)
    for position, (target, acc) in enumerate(zip(targets, accs, strict=True)):
        output, outputs[position] = outputs[position], None
        value = onnx_values.get(target.onnx_value) if target.onnx_value else None
        if target.onnx_value:
            uses[target.onnx_value] -= 1
            if not uses[target.onnx_value]:
                onnx_values.pop(target.onnx_value, None)
        if value is not None and output is not None:
            kept[position] = output.cpu().numpy()
            acc.update(kept[position], value, first_index)
    return kept, _nonfinite_rows(final)


class _OwnErrors:
    """Each matched row's own error (module docstring). One session runs every row's part
    of the graph, renamed apart, on torch's values for the compared values it reads."""

    def __init__(
        self,
        model: onnx.ModelProto,
        targets: list[_Target],
        accs: list[_RowAcc],
        tolerance: float,
        rtol: float,
        dequantized: dict[str, tuple[str, str, str]] | None = None,
    ) -> None:
        # Values whose torch side has the ONNX value's shape; the first row of each feeds it.
        usable: dict[str, int] = {}
        for position, (target, acc) in enumerate(zip(targets, accs, strict=True)):
            if target.onnx_value and acc.layouts is not None and not acc.shape_reason:
                usable.setdefault(target.onnx_value, position)
        self.accs = {p: _RowAcc(tolerance, rtol) for p in usable.values()}
        self.usable = usable
        self.outputs: dict[int, str] = {}
        self.fed: dict[str, int] = {}
        self.dtypes: dict[str, np.dtype] = {}
        self.reason: str | None = None
        self.session: ort.InferenceSession | None = None
        if not usable:
            return
        isolated = _isolating_model(model, targets, usable, dequantized or {})
        self.outputs, self.fed = isolated.outputs, isolated.fed
        graph_types = _elem_types(model, usable)
        self.dtypes = {
            name: helper.tensor_dtype_to_np_dtype(graph_types[targets[p].onnx_value or ""])
            for name, p in self.fed.items()
        }
        try:
            self.session = ort.InferenceSession(
                isolated.model.SerializeToString(), _options(), providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # ORT raises its own exception types
            self.reason = f"its part of the ONNX graph could not be run alone: {error}"

    def update(
        self, kept: dict[int, np.ndarray], feeds: dict[str, np.ndarray], first_index: int
    ) -> None:
        if self.session is None:
            return
        inputs = {i.name for i in self.session.get_inputs()}
        run_feeds = {name: value for name, value in feeds.items() if name in inputs}
        for name, position in self.fed.items():
            run_feeds[name] = kept[position].astype(self.dtypes[name], copy=False)
        names = list(self.outputs.values())
        values = dict(zip(names, self.session.run(names, run_feeds), strict=True))
        for position, name in self.outputs.items():
            self.accs[position].update(kept[position], values.pop(name), first_index)

    def add_to(self, table: LayerTable) -> None:
        """Set each row's own error and the table's origin by the rule in the docstring."""
        table.own_reason = self.reason
        for row in table.rows if self.session else ():
            # A row with the value of an earlier one (a block ending in its child) shares
            # that row's part.
            position = self.usable.get(row.onnx_value or "", -1)
            acc = self.accs.get(position)
            if acc is None or position not in self.outputs or row.status == "unmatched":
                continue
            own = acc.row(_Target(row.name, row.module_type, row.onnx_value))
            if own.status != "unmatched":
                row.own, row.own_status = own.stats, own.status
        bad = ("over", "nonfinite")
        if not any(r.status in bad for r in table.rows):
            return
        born = (r for r in table.rows if (r.own_status if r.own else r.status) in bad)
        first = next(born, None)
        if first is not None:
            table.origin = first.name
            table.origin_rule = "own error" if first.own else "not isolated"
        else:
            table.origin_rule = "first over"


class _Isolated(NamedTuple):
    model: onnx.ModelProto
    outputs: dict[int, str]
    """{target position: the output carrying its own value}."""
    fed: dict[str, int]
    """{model input: the target position whose torch output feeds it}."""


def _isolating_model(
    model: onnx.ModelProto,
    targets: list[_Target],
    usable: dict[str, int],
    dequantized: dict[str, tuple[str, str, str]],
) -> _Isolated:
    """One model holding, for each usable row, the nodes between its value and the nearest
    compared values (or graph inputs) upstream, renamed apart, those values as inputs.

    A compared value that is an integer tensor dequantized (`dequantized`: {float value:
    (integer tensor, scale, zero point)}) is read as the reference's float values quantized
    with that scale: an integer op cannot read floats."""
    producers = {name: node for node in model.graph.node for name in node.output}
    initializers = {init.name for init in model.graph.initializer}
    constant = set(initializers)
    order = {id(node): k for k, node in enumerate(model.graph.node)}
    types = _elem_types(model, usable)
    compared = dict(usable)
    requantize = {}
    for value, (integer, scale, zero_point) in dequantized.items():
        if value in usable and {scale, zero_point} <= initializers:
            compared.setdefault(integer, usable[value])
            requantize[integer] = (scale, zero_point)
    nodes: list[onnx.NodeProto] = []
    outputs: dict[int, str] = {}
    fed: dict[str, int] = {}
    for value, position in usable.items():
        part, reads = _part_above(value, producers, constant, compared)
        suffix = f"__own{position}"
        local = {name: name + suffix for node in part for name in node.output if name}
        local.update({name: f"{name}__requantized" for name in reads if name in requantize})
        for node in sorted(part, key=lambda n: order[id(n)]):
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            copy.name = node.name + suffix
            for k, name in enumerate(node.input):
                read = name in reads and name not in requantize
                copy.input[k] = f"{name}__torch" if read else local.get(name, name)
            for k, name in enumerate(node.output):
                copy.output[k] = local.get(name, name)
            nodes.append(copy)
        for name in reads:
            if name in requantize and f"{name}__torch" not in fed:
                scale, zero_point = requantize[name]
                quantize = [f"{name}__torch", scale, zero_point]
                nodes.append(helper.make_node("QuantizeLinear", quantize, [f"{name}__requantized"]))
            fed[f"{name}__torch"] = compared[name]
        outputs[position] = local[value]
    isolated = onnx.ModelProto()
    isolated.CopyFrom(model)
    graph = isolated.graph
    for name in ("node", "output", "value_info"):
        graph.ClearField(name)
    graph.node.extend(nodes)
    graph.input.extend(
        helper.make_tensor_value_info(name, types[targets[p].onnx_value or ""], None)
        for name, p in fed.items()
    )
    graph.output.extend(
        helper.make_tensor_value_info(name, types[targets[p].onnx_value or ""], None)
        for p, name in outputs.items()
    )
    return _Isolated(isolated, outputs, fed)


def _part_above(
    value: str,
    producers: dict[str, onnx.NodeProto],
    constant: set[str],
    compared: dict[str, int],
) -> tuple[list[onnx.NodeProto], set[str]]:
    """The nodes computing `value` from the compared values upstream (which it `reads`),
    initializers and graph inputs."""
    part: dict[int, onnx.NodeProto] = {}
    reads: set[str] = set()
    stack, seen = [value], set()
    while stack:
        name = stack.pop()
        if name in seen or not name or name in constant:
            continue
        seen.add(name)
        # The integer tensor of a dequantized value is that value, not upstream of it.
        if name != value and name in compared and compared[name] != compared.get(value):
            reads.add(name)
        elif name in producers and id(producers[name]) not in part:
            part[id(producers[name])] = producers[name]
            stack.extend(producers[name].input)
    return list(part.values()), reads


def compare_onnx_tensors(
    ref_path: str | Path,
    other_path: str | Path,
    batches: Iterable[dict[str, np.ndarray]],
    *,
    tolerance: float,
    rtol: float = 0.0,
    sub_batch_bytes: int = SUB_BATCH_BYTES,
) -> LayerTable:
    """Compare two ONNX models (e.g. fp32 and its INT8 form) tensor by tensor.

    Rows are the float node outputs of `ref` in graph (topological) order, skipping
    constant-foldable tensors (whose inputs are all initializers or constants). Each is
    compared with the float tensor of the same name in `other`, or, when that tensor only
    feeds a QuantizeLinear -> DequantizeLinear pair, with the DequantizeLinear output: what
    its consumers read (static QDQ may also drop a Relu whose clipping the QuantizeLinear
    does, leaving its name on the pre-activation). A tensor missing from `other` (its
    producer replaced or fused, e.g. Gemm+Relu) is listed "unmatched" with the reason; the
    quantizer keeps the names of the tensors it rewires, so most rows match. `module_type`
    is the op_type of the node producing the tensor in `ref`. Rows go a sub-batch at a time
    (`SUB_BATCH_BYTES`), but whole batches through a model with a `ROW_COUPLING_OPS` op.

    A row's own error is `other`'s part between the compared tensors upstream and its
    tensor, fed `ref`'s values for them: in QDQ, its weights' and its output's quantization,
    not its inputs' (as ONNX Runtime's qdq_loss_debug separates qdq_err from xmodel_err).
    """
    ref, other = onnx.load(str(ref_path)), onnx.load(str(other_path))
    matching = match_tensors(
        ref, other, _data_tensors(ref), _elem_types(ref), _elem_types(other, _node_outputs(other))
    )
    targets = [
        _Target(c.name, c.op_type, c.value, c.reason, c.carries) for c in matching.counterparts
    ]
    matched = [t for t in targets if t.onnx_value]
    ref_session = _exposing_session(ref, [t.name for t in matched])
    other_session = _exposing_session(
        matching.model, [t.onnx_value for t in matched if t.onnx_value]
    )
    _unmatch_unexposed(targets, other_session)
    matched = [t for t in targets if t.onnx_value]
    exposure = _Exposure(other, other_session)
    accs = [_RowAcc(tolerance, rtol) for _ in targets]
    coupled = _couples_rows(ref) or _couples_rows(other)
    own: _OwnErrors | None = None
    step = 0  # rows per sub-batch; 0 until the first sub-batch has measured a row's bytes
    first_index = 0
    ref_outputs = [o.name for o in ref.graph.output]
    ref_nonfinite = 0
    for feeds in batches:
        rows = len(next(iter(feeds.values())))
        start = 0
        while start < rows:
            size = rows if coupled else step or PROBE_ROWS
            part = {name: value[start : start + size] for name, value in feeds.items()}
            ref_values = _run(ref_session, [*ref_outputs, *(t.name for t in matched)], part)
            ref_nonfinite += _nonfinite_rows([ref_values[n] for n in ref_outputs])
            other_values = _run(
                other_session, [*exposure.outputs, *(t.onnx_value for t in matched)], part
            )
            exposure.update(other_values, part)
            if not step:
                # Half as much again for the isolated tensors' values (own errors).
                held = 1.5 * sum(v.nbytes for v in (*ref_values.values(), *other_values.values()))
                step = max(1, int(sub_batch_bytes // max(held / min(size, rows - start), 1)))
            kept = {}
            # Two rows may share a counterpart (a fault's Mul and its input): dropped after
            # its last row.
            uses = Counter(t.onnx_value for t in matched)
            for position, (target, acc) in enumerate(zip(targets, accs, strict=True)):
                if target.onnx_value:
                    kept[position] = ref_values.pop(target.name)
                    uses[target.onnx_value] -= 1
                    value = other_values[target.onnx_value]
                    if not uses[target.onnx_value]:
                        del other_values[target.onnx_value]
                    acc.update(kept[position], value, first_index + start)
            if own is None:  # after one sub-batch: its rows say which values feed it
                own = _OwnErrors(
                    matching.model, targets, accs, tolerance, rtol, matching.dequantized
                )
            own.update(kept, part, first_index + start)
            start += size
        first_index += rows
    table = _table(targets, accs, tolerance, rtol)
    if own is not None:
        own.add_to(table)
    table.exposure_effect = exposure.max_abs
    table.final_nonfinite = (ref_nonfinite, exposure.nonfinite)
    return table


def inject_fault(
    onnx_path: str | Path, out_path: str | Path, *, module_path: str, scale: float = 1.5
) -> str:
    """Copy the model with the output of `module_path` ("relu#2": its 2nd call) scaled.

    The producer's output is renamed and a Mul writes the original name, so consumers read
    the faulty value; the Mul copies the producer's metadata, so it ends the module's node
    group and the comparison pairs the module with the altered value. Returns that name.
    """
    model = onnx.load(str(onnx_path))
    path, call = _parse_row_name(module_path)
    module_groups = module_node_groups(model).get(path, [])
    if len(module_groups) < call:
        raise ValueError(f"{module_path!r}: {len(module_groups)} node group(s) carry its scope")
    producer = module_groups[call - 1][-1]
    value = producer.output[0]
    elem_type = _elem_types(model, [value]).get(value, onnx.TensorProto.FLOAT)
    scale_name, clean_name = f"{value}__fault_scale", f"{value}__before_fault"
    dtype = helper.tensor_dtype_to_np_dtype(elem_type)
    model.graph.initializer.append(numpy_helper.from_array(np.array(scale, dtype), scale_name))
    producer.output[0] = clean_name
    mul = helper.make_node("Mul", [clean_name, scale_name], [value], name=f"{value}__fault")
    mul.metadata_props.extend(producer.metadata_props)
    nodes = list(model.graph.node)
    model.graph.ClearField("node")
    for node in nodes:
        model.graph.node.append(node)
        if node is producer:
            model.graph.node.append(mul)
    onnx.save(model, str(out_path))
    return value


@dataclass
class LayerStats:
    """The figures a row reports, |ref - other| in float64 as `DiffStats` computes them (count,
    sum, max, non-finite elements, the k worst samples) plus the SQNR sums and the layer's
    scale, max |ref|, in a few passes: no histogram or element-wise relative error, which no row
    shows (DiffStats costs 10x more per element)."""

    k: int = 5
    count: int = 0
    nonfinite_ref: int = 0
    nonfinite_other: int = 0
    sum_abs: float = 0.0
    max_abs: float = 0.0
    ref_max: float = 0.0
    """max |ref| over the elements finite on both sides: the layer's scale."""
    signal: float = 0.0
    """sum ref^2 over the elements finite on both sides."""
    noise: float = 0.0
    """sum (ref - other)^2 over the same elements."""
    worst: Worst = field(init=False)

    def __post_init__(self) -> None:
        self.worst = Worst(self.k)

    def update(self, ref: np.ndarray, other: np.ndarray, first_index: int) -> None:
        """Add a batch: `ref` and `other` of the same shape, samples along axis 0."""
        if not len(ref):
            return
        ref = np.asarray(ref, dtype=np.float64).reshape(len(ref), -1)
        with np.errstate(invalid="ignore", over="ignore"):  # non-finite elements: see below
            diff = np.abs(np.subtract(ref, other.reshape(len(ref), -1), dtype=np.float64))
        total = float(diff.sum())
        if np.isfinite(total):  # NaN or Inf in, NaN or Inf out; an overflow is Inf too
            finite_ref, finite_diff, per_sample = ref.reshape(-1), diff.reshape(-1), diff
        else:
            finite = np.isfinite(ref), np.isfinite(other.reshape(len(ref), -1))
            self.nonfinite_ref += int((~finite[0]).sum())
            self.nonfinite_other += int((~finite[1]).sum())
            both = finite[0] & finite[1]
            finite_ref, finite_diff = ref[both], diff[both]
            total = float(finite_diff.sum())
            # A non-finite element counts as an infinite difference for its sample.
            per_sample = np.where(both, diff, np.inf)
        self.count += finite_diff.size
        if finite_diff.size:
            self.sum_abs += total
            self.max_abs = max(self.max_abs, float(finite_diff.max()))
            self.ref_max = max(self.ref_max, float(np.abs(finite_ref).max()))
            # einsum, not dot: BLAS's threads, spinning between calls, starve torch's.
            self.signal += float(np.einsum("i,i->", finite_ref, finite_ref))
            self.noise += float(np.einsum("i,i->", finite_diff, finite_diff))
        worst = reduce_rows(np.maximum, per_sample) if per_sample.size else np.zeros(len(ref))
        self.worst.update(worst, np.arange(first_index, first_index + len(ref)))

    @property
    def nonfinite(self) -> int:
        return self.nonfinite_ref + self.nonfinite_other

    @property
    def mean_abs(self) -> float:
        return self.sum_abs / self.count if self.count else 0.0

    @property
    def rel_max(self) -> float:
        """max |diff| / max |ref|: the error relative to the layer's scale."""
        if self.ref_max:
            return self.max_abs / self.ref_max
        return 0.0 if self.max_abs == 0 else float("inf")

    def sqnr_db(self) -> float:
        """10 log10(signal / noise): inf when the two agree exactly."""
        if self.noise == 0:
            return float("inf")
        if self.signal == 0:
            return float("-inf")
        return float(10 * np.log10(self.signal / self.noise))


@dataclass
class _RowAcc:
    """Streaming state of one row: stats, shape check, live layout candidates."""

    tolerance: float
    rtol: float = 0.0
    stats: LayerStats = field(default_factory=LayerStats)
    shape_reason: str | None = None
    layouts: dict[str, tuple[int, ...]] | None = None

    def update(self, ref: np.ndarray, other: np.ndarray, first_index: int) -> None:
        ref, other = np.atleast_1d(ref), np.atleast_1d(other)
        if self.layouts is None:
            self.layouts = _layout_candidates(ref.shape, other.shape)
        if self.layouts:
            self._prune_layouts(self.layouts, ref, other)
        if ref.shape != other.shape:
            self.shape_reason = self.shape_reason or (
                f"shape differs: reference {ref.shape} vs ONNX {other.shape}"
            )
        if self.shape_reason:
            return
        self.stats.update(ref, other, first_index)

    def _prune_layouts(
        self, layouts: dict[str, tuple[int, ...]], ref: np.ndarray, other: np.ndarray
    ) -> None:
        # A candidate stays while undoing its permutation keeps every |diff| <= tolerance.
        for description, perm in list(layouts.items()):
            undone = np.transpose(other, np.argsort(perm))
            if undone.shape != ref.shape or not np.all(np.abs(ref - undone) <= self.tolerance):
                del layouts[description]

    def row(self, target: _Target) -> LayerRow:
        layout = next(iter(self.layouts or {}), None)
        if self.shape_reason:
            unmatched = self.shape_reason + (f"; values agree after {layout}" if layout else "")
            return _row(target, "unmatched", unmatched, layout=layout)
        status, reason = "ok", None
        allowed = self.tolerance + self.rtol * self.stats.ref_max
        if self.stats.nonfinite:
            status = "nonfinite"
            reason = (
                f"non-finite values: {self.stats.nonfinite_ref} in reference,"
                f" {self.stats.nonfinite_other} in ONNX"
            )
        elif self.stats.max_abs > allowed:
            status = "over"
        layout = layout if status == "over" else None
        row = _row(target, status, reason, self.stats, layout, self.stats.sqnr_db())
        row.allowed = allowed
        return row


def _layout_candidates(ref_shape: tuple, other_shape: tuple) -> dict[str, tuple[int, ...]]:
    return {
        f"{label} {perm}": perm
        for label, perm in LAYOUTS.get(len(ref_shape), ())
        if tuple(other_shape[i] for i in np.argsort(perm)) == tuple(ref_shape)
    }


def _table(
    targets: list[_Target], accs: list[_RowAcc], tolerance: float, rtol: float
) -> LayerTable:
    rows = [
        acc.row(target)
        if target.onnx_value and acc.layouts is not None
        else _row(target, "unmatched", target.reason or "no batch was compared")
        for target, acc in zip(targets, accs, strict=True)
    ]
    origin = next((r.name for r in rows if r.status in ("over", "nonfinite")), None)
    return LayerTable(rows, origin, tolerance, rtol)


def _row(
    target: _Target,
    status: str,
    reason: str | None,
    stats: LayerStats | None = None,
    layout: str | None = None,
    sqnr_db: float | None = None,
) -> LayerRow:
    return LayerRow(
        target.name,
        target.module_type,
        target.onnx_value,
        stats,
        status,
        reason,
        layout,
        sqnr_db,
        carries=target.carries,
    )


def _match_calls(
    calls: list[LeafCall], groups: dict[str, list[list[onnx.NodeProto]]]
) -> list[_Target]:
    counts = Counter(c.path for c in calls)
    targets = [_match_call(c, counts[c.path], groups.get(c.path, [])) for c in calls]
    _explain_unscoped(targets)
    return targets


def _explain_unscoped(targets: list[_Target]) -> None:
    """Say where a module without nodes went: removed (a no-op in eval mode), or folded into
    the BatchNorm called right after it, whose row then carries it."""
    for target, after in zip(targets, [*targets[1:], None], strict=True):
        if target.reason != NO_SCOPE_REASON:
            continue
        if target.module_type in NO_OP_TYPES:
            target.reason = REMOVED_REASON
        elif (
            after is not None
            and after.onnx_value
            and after.module_type.startswith("BatchNorm")
            and target.module_type.startswith(("Conv", "Linear"))
        ):
            target.reason = f"fused into {after.name!r} by the exporter: its row carries this layer"
            after.carries.append(target.name)


def _match_call(call: LeafCall, calls: int, groups: list[list[onnx.NodeProto]]) -> _Target:
    target = _Target(call.name, call.module_type, None)
    if not call.tensor:
        target.reason = f"output is a {call.output_kind}, not a tensor"
    elif not groups:
        target.reason = NO_SCOPE_REASON
    elif len(groups) != calls:
        target.reason = (
            f"called {calls} time(s) in torch but {len(groups)} ONNX node group(s) carry its"
            " scope (calls merged or removed by the exporter): calls cannot be paired"
        )
    else:
        last = groups[call.call - 1][-1]
        classes = _metadata_list(last, CLASS_HIERARCHY) or []
        scopes = _metadata_list(last, NAME_SCOPES) or []
        # The class at the module's own scope (the last node may belong to a child).
        at = scopes.index(call.path) if call.path in scopes[:-1] else len(classes) - 2
        onnx_class = classes[at].rsplit(".", 1)[-1] if 0 <= at < len(classes) else None
        if onnx_class not in (None, call.module_type):
            target.reason = f"ONNX scope belongs to a {onnx_class}, not a {call.module_type}"
        else:
            target.onnx_value = last.output[0]
    return target


def _couples_rows(model: onnx.ModelProto) -> bool:
    return any(node.op_type in ROW_COUPLING_OPS for node in model.graph.node)


def _exposing_session(model: onnx.ModelProto, values: list[str]) -> ort.InferenceSession:
    """A CPU session whose outputs also include every value whose type is known."""
    types = _elem_types(model, values)
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    present = {o.name for o in exposed.graph.output}
    for name in dict.fromkeys(values):
        if name not in present and name in types:
            exposed.graph.output.append(helper.make_tensor_value_info(name, types[name], None))
    return ort.InferenceSession(
        exposed.SerializeToString(), _options(), providers=["CPUExecutionProvider"]
    )


class _Exposure:
    """The exposure effect (`LayerTable.exposure_effect`): the plain session, as deployed, run
    beside the exposing one on the same feeds, their final outputs compared."""

    def __init__(self, model: onnx.ModelProto, exposing: ort.InferenceSession) -> None:
        self.outputs = [o.name for o in model.graph.output]
        self.session = ort.InferenceSession(
            model.SerializeToString(), _options(), providers=["CPUExecutionProvider"]
        )
        self.max_abs = 0.0
        self.nonfinite = 0
        """Rows with NaN or Inf in the plain session's final outputs."""

    def update(self, exposed: dict[str, np.ndarray], feeds: dict[str, np.ndarray]) -> None:
        """Fold one sub-batch in; `exposed` holds the exposing session's final outputs."""
        plain = self.session.run(self.outputs, feeds)
        self.nonfinite += _nonfinite_rows(plain)
        for name, value in zip(self.outputs, plain, strict=True):
            if np.issubdtype(value.dtype, np.floating):
                with np.errstate(invalid="ignore"):  # NaN on either side: the rows report it
                    diff = np.abs(np.subtract(value, exposed[name], dtype=np.float64))
                self.max_abs = max(self.max_abs, float(np.fmax.reduce(diff.ravel(), initial=0)))


def _nonfinite_rows(outputs: object) -> int:
    """Rows with a NaN or Inf in any float array of `outputs` (a tensor, array or sequence
    of them, rows along axis 0)."""
    arrays = outputs if isinstance(outputs, list | tuple) else [outputs]
    bad: np.ndarray | None = None
    for array in arrays:
        if isinstance(array, torch.Tensor):
            if not array.is_floating_point():
                continue
            array = array.detach().cpu().float().numpy()  # numpy has no bfloat16
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "fc" or not array.ndim:
            continue
        rows = np.asarray(~np.isfinite(array.reshape(len(array), -1)).all(axis=1))
        bad = rows if bad is None or len(bad) != len(rows) else bad | rows
    return int(bad.sum()) if bad is not None else 0


def _options() -> ort.SessionOptions:
    options = ort.SessionOptions()
    # Its threads would spin after each sub-batch's run, starving the torch forward next.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _unmatch_unexposed(targets: list[_Target], session: ort.InferenceSession) -> None:
    outputs = {o.name for o in session.get_outputs()}
    for target in targets:
        if target.onnx_value and target.onnx_value not in outputs:
            target.onnx_value, target.reason = None, "ONNX value has no known type"


def _run(
    session: ort.InferenceSession, values: Iterable[str | None], feeds: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    outputs = {o.name for o in session.get_outputs()}
    names = [name for name in dict.fromkeys(values) if name is not None and name in outputs]
    return dict(zip(names, session.run(names, feeds), strict=True))


def _elem_types(model: onnx.ModelProto, needed: Iterable[str] = ()) -> dict[str, int]:
    """{value name: elem_type}, running shape inference only when a needed name lacks one."""
    types = _declared_types(model)
    if any(name not in types for name in needed):
        types = _declared_types(onnx.shape_inference.infer_shapes(model))
    return types


def _declared_types(model: onnx.ModelProto) -> dict[str, int]:
    graph = model.graph
    infos = [*graph.input, *graph.value_info, *graph.output]
    types = {i.name: i.type.tensor_type.elem_type for i in infos if i.type.HasField("tensor_type")}
    types.update({init.name: init.data_type for init in graph.initializer})
    return {name: t for name, t in types.items() if t}


def _node_outputs(model: onnx.ModelProto) -> list[str]:
    return [name for node in model.graph.node for name in node.output if name]


def _data_tensors(model: onnx.ModelProto) -> list[tuple[str, str]]:
    """(name, op_type) of float node outputs that depend on a graph input, in graph order."""
    types = _elem_types(model, _node_outputs(model))
    constant = {init.name for init in model.graph.initializer}
    tensors = []
    for node in model.graph.node:
        if all(name in constant for name in node.input if name):
            constant.update(node.output)
            continue
        tensors += [(n, node.op_type) for n in node.output if types.get(n) in FLOAT_TYPES]
    return tensors


def _metadata_list(node: onnx.NodeProto, key: str) -> list[str] | None:
    for prop in node.metadata_props:
        if prop.key == key:
            return ast.literal_eval(prop.value)
    return None


def _parse_row_name(name: str) -> tuple[str, int]:
    path, _, call = name.rpartition("#")
    return (path, int(call)) if path and call.isdigit() else (name, 1)
