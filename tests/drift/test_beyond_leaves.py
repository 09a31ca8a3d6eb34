"""Issue 18.4: modules that are not leaves but compute something of their own (attention,
a block's residual Add) get rows; `depth` and `modules` choose the rows. Done when a small
fault in one attention projection is localised to that attention's row."""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch

from parityspec.backends.torch_export import export_torch_to_onnx
from parityspec.drift.torch_layers import compare_torch_onnx_layers
from tests.conftest import REPO

ATOL, RTOL = 1e-4, 1e-5
ATTENTION = ["encoder.layers.0.self_attn", "encoder.layers.1.self_attn"]


def _nets():
    spec = importlib.util.spec_from_file_location("nets", REPO / "examples/torch/nets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def transformer(tmp_path_factory):
    net = _nets().transformer()
    x = torch.randn(6, 8, 32, generator=torch.Generator().manual_seed(1))
    path = export_torch_to_onnx(net, (x[:2],), tmp_path_factory.mktemp("tr") / "clean.onnx")
    return net, path, x


def _faulty_export(net, x, tmp_path, parameter, rows=None):
    """The export of a copy with `parameter` (or its `rows`) off by 0.5%."""
    faulty = copy.deepcopy(net)
    with torch.no_grad():
        weight = faulty.get_parameter(parameter)
        weight[rows if rows is not None else slice(None)] *= 1.005
    return export_torch_to_onnx(faulty, (x[:2],), tmp_path / "faulty.onnx")


def test_attention_is_compared_and_the_clean_export_has_no_origin(transformer):
    net, path, x = transformer
    table = compare_torch_onnx_layers(net, path, [(x,)], tolerance=ATOL, rtol=RTOL)
    rows = {r.name: r for r in table.rows}
    for name in ATTENTION:  # not leaves: out_proj is used functionally, never called
        assert rows[name].module_type == "MultiheadAttention" and rows[name].status == "ok"
        assert rows[name].own is not None
    # The layer's own Adds (residuals) and ReLU give it a row too; Sequential-like
    # containers (encoder, encoder.layers) compute nothing of their own: no row.
    assert rows["encoder.layers.0"].status == "ok" and "encoder" not in rows
    assert not [n for n in rows if n.endswith("out_proj")]
    assert table.origin is None


@pytest.mark.parametrize(
    ("parameter", "rows"),
    [
        ("encoder.layers.1.self_attn.out_proj.weight", None),  # the output projection
        ("encoder.layers.1.self_attn.in_proj_weight", slice(32, 64)),  # the key projection
    ],
)
def test_a_fault_in_one_attention_projection_is_localised_to_it(
    transformer, tmp_path, parameter, rows
):
    net, _, x = transformer
    faulty = _faulty_export(net, x, tmp_path, parameter, rows)
    table = compare_torch_onnx_layers(net, faulty, [(x,)], tolerance=ATOL, rtol=RTOL)
    names = [r.name for r in table.rows]
    assert table.origin == ATTENTION[1] and table.origin_rule == "own error"
    before = table.rows[: names.index(ATTENTION[1])]
    assert all(r.status in ("ok", "unmatched") for r in before)  # Dropouts: removed
    after = table.rows[names.index(ATTENTION[1]) + 1 :]
    assert after and all(r.own_status != "over" for r in after)


def test_depth_compares_modules_whole(transformer):
    net, path, x = transformer
    table = compare_torch_onnx_layers(net, path, [(x,)], tolerance=ATOL, rtol=RTOL, depth=3)
    assert [r.name for r in table.rows] == ["encoder.layers.0", "encoder.layers.1", "head"]
    assert all(r.status == "ok" for r in table.rows)


def test_module_patterns_choose_the_rows(transformer, tmp_path):
    net, _, x = transformer
    faulty = _faulty_export(net, x, tmp_path, "encoder.layers.1.linear1.weight")
    table = compare_torch_onnx_layers(
        net, faulty, [(x,)], tolerance=ATOL, rtol=RTOL, modules=["*.self_attn", "*.linear1"]
    )
    names = [r.name for r in table.rows]
    assert names == [
        "encoder.layers.0.self_attn",
        "encoder.layers.0.linear1",
        "encoder.layers.1.self_attn",
        "encoder.layers.1.linear1",
    ]
    assert table.origin == "encoder.layers.1.linear1"


def test_a_module_pattern_matching_nothing_fails_the_check_naming_it(tmp_path):
    from parityspec.checks import layer_drift
    from tests.checks.conftest import check_spec, resolve_tolerances
    from tests.checks.test_nonfinite_every_check import layer_inputs

    inputs = layer_inputs(tmp_path)
    spec = check_spec(layer_drift, modules=["0", "encoder.*"])
    result = layer_drift.run(spec, resolve_tolerances(spec), inputs)
    assert result.status == "failed"
    assert "modules: 'encoder.*' match no module of ref" in result.reason
    assert "its modules: 0, 1" in result.reason and "'0'" not in result.reason
    spec = check_spec(layer_drift, modules=["0"])
    result = layer_drift.run(spec, resolve_tolerances(spec), inputs)
    assert result.status == "passed" and [r["name"] for r in result.details["rows"]] == ["0"]


def test_depth_and_modules_together_are_refused_at_validate(invoke, tmp_path):
    spec = (REPO / "specs" / "transformer.yaml").read_text()
    spec = spec.replace("type: layer_drift,", "type: layer_drift, depth: 2, modules: [head],")
    spec = spec.replace("../examples", str(REPO / "examples"))
    path = tmp_path / "spec.yaml"
    path.write_text(spec)
    result = invoke("validate", path)
    assert result.exit_code == 2
    assert "give either depth or modules" in result.output and "Traceback" not in result.output
    path.write_text(spec.replace(", modules: [head]", "").replace("depth: 2", "depth: 0"))
    result = invoke("validate", path)
    assert result.exit_code == 2 and "depth" in result.output
