"""A sweep over networks (issue 16, point 9): `specs/torch_sweep.yaml` sweeps the torch
backend's `module` over an MLP, a CNN and a transformer block on one image input; each is
compared with its ONNX export layer by layer, and the sweep table says, per network, how many
layers were compared, matched and unmatched, the worst relative error and the drift origin."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from parityspec.cli import cli
from parityspec.loading import load_callable
from parityspec.report.build import _drift_figures
from tests.conftest import REPO, SPECS

NETS = ("mlp", "cnn", "transformer")
# Per network: (layers, matched, unmatched). The CNN's exporter fuses conv1 and conv2 into
# the BatchNorms after them; the transformer block's three Dropouts are removed in eval mode.
COUNTS = {"mlp": (6, 6, 0), "cnn": (9, 7, 2), "transformer": (11, 8, 3)}


def _run(spec: Path, out: Path, cache: Path):
    args = ["run", str(spec), "--out", str(out)]
    env = {"PARITYSPEC_CACHE_DIR": str(cache)}
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def torch_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("torch_sweep")
    result = _run(SPECS / "torch_sweep.yaml", out, tmp_path_factory.mktemp("sweep_cache"))
    return result, out, json.loads((out / "report.json").read_text())


def _net(row: dict) -> str:
    return row["values"]["module"].rpartition(":")[2]


def test_the_spec_sweeps_the_torch_module_and_every_check_follows(torch_sweep):
    result, _, report = torch_sweep
    assert result.exit_code == 0 == report["exit_code"], result.output
    ids = [c["id"] for c in report["checks"]]
    assert ids == [
        f"{check}[module=../examples/torch/sweep_nets.py:{net}]"
        for check in ("layers", "logits")
        for net in NETS
    ]
    assert {c["between"][1] for c in report["checks"]} == {
        f"onnx[module=../examples/torch/sweep_nets.py:{net}]" for net in NETS
    }  # the derived ONNX backend follows the torch backend's matrix, one export per network


def test_the_layer_drift_table_has_a_row_per_network_with_its_figures(torch_sweep):
    report = torch_sweep[2]
    tables = {t["check"]: t for t in report["sweep"]}
    assert list(tables) == ["layers", "logits"]
    layers = tables["layers"]
    assert (layers["type"], layers["axes"], layers["drift"]) == ("layer_drift", ["module"], "layer")
    assert (layers["total"], layers["passed"]) == (3, 3)
    assert [_net(r) for r in layers["rows"]] == list(NETS)
    checks = {c["id"]: c for c in report["checks"]}
    for row in layers["rows"]:
        check, drift = checks[row["id"]], row["drift"]
        assert (drift["compared"], drift["matched"], drift["unmatched"]) == COUNTS[_net(row)]
        assert drift["over"] == 0 and drift["origin"] is None and row["status"] == "passed"
        rows = check["details"]["rows"]
        worst = max((r for r in rows if r["rel_diff"] is not None), key=lambda r: r["rel_diff"])
        assert (drift["worst_rel_diff"], drift["worst_at"]) == (worst["rel_diff"], worst["name"])
        # float32 rounding, not zero (a degenerate net) and not drift
        assert 1e-8 < drift["worst_rel_diff"] < 1e-5
        assert row["headline"] == check["gates"][0]["value"] < 0.05
        assert check["gates"][0]["figure"] == "max_layer_diff_to_allowed"
    assert "drift" not in tables["logits"]  # output_parity: no layer table
    assert all("drift" not in r for r in tables["logits"]["rows"])


def test_the_table_is_in_the_markdown_and_the_html(torch_sweep):
    out, report = torch_sweep[1], torch_sweep[2]
    markdown = (out / "report.md").read_text()
    header = (
        "| module | layers | matched | unmatched | over | worst rel | origin "
        "| max_layer_diff_to_allowed | use of limit | verdict |"
    )
    assert header in markdown
    html = (out / "report.html").read_text()
    sweep_html = html[html.index('<section class="sweep"') :]
    sweep_html = sweep_html[: sweep_html.index("</section>")]
    assert "<th>layers</th><th>matched</th><th>unmatched</th><th>over</th>" in sweep_html
    for row in report["sweep"][0]["rows"]:
        layers, matched, unmatched = COUNTS[_net(row)]
        line = next(
            line
            for line in markdown.splitlines()
            if line.startswith(f"| {row['values']['module']} | {layers} ")
        )
        assert f"| {layers} | {matched} | {unmatched} | 0 | " in line
        assert f"(`{row['drift']['worst_at']}`) | none |" in line and "✅ passed" in line
        assert f'<td class="num">{layers}</td><td class="num">{matched}</td>' in sweep_html
        assert f"<code>{row['values']['module']}</code>" in sweep_html


def test_a_faulty_network_names_its_origin_in_the_table(tmp_path):
    """As `specs/cnn_fault.yaml`, swept: the CNN against the export of itself and of its
    copy with conv2 off by 5%. The faulty row's origin is bn2 (which carries the fused conv2),
    the clean one's none. A third value, the 30-feature MLP, cannot take the image: its
    export fails, its check is skipped, and its row has no drift figures (dashes)."""
    spec = yaml.safe_load((SPECS / "cnn.yaml").read_text())
    nets = REPO / "examples" / "torch" / "nets.py"
    spec["name"] = "cnn_fault_sweep"
    spec["backends"] = {
        "torch": {"kind": "torch", "module": f"{nets}:small_cnn"},
        "exported": {
            "kind": "torch",
            "matrix": {"module": [f"{nets}:{n}" for n in ("small_cnn", "small_cnn_faulty", "mlp")]},
        },
        "onnx": {"kind": "onnx", "from": "exported", "opset": 18},
    }
    spec["checks"] = [{"id": "layers", "type": "layer_drift", "between": ["torch", "onnx"]}]
    spec["profiles"] = {}
    spec["report"] = {"formats": ["json", "markdown", "html"]}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    result = _run(tmp_path / "spec.yaml", tmp_path / "out", tmp_path / "cache")
    assert result.exit_code == 2, result.output  # the worst verdict: the MLP refuses the input
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (table,) = report["sweep"]
    clean, faulty, unfit = table["rows"]
    assert (unfit["status"], unfit["drift"]) == ("skipped", None)
    assert (clean["status"], clean["drift"]["origin"], clean["drift"]["over"]) == (
        "passed",
        None,
        0,
    )
    assert faulty["status"] == "failed"
    assert (faulty["drift"]["origin"], faulty["drift"]["origin_rule"]) == ("bn2", "own error")
    assert faulty["drift"]["over"] >= 1 and faulty["drift"]["worst_rel_diff"] > 1e-3
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "| `bn2` (own error) |" in markdown and "❌ failed |" in markdown
    assert f"| {nets}:mlp | - | - | - | - | - | - | - | - |" in markdown
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<td><code>bn2</code> (own error)</td>" in html
    assert f"<td><code>{nets}:mlp</code></td>" + "<td>-</td>" * 6 in html


def test_a_nan_row_is_the_worst_and_an_errored_check_has_no_figures():
    rows = [
        {"name": "a", "rel_diff": 1e-7},
        {"name": "b", "rel_diff": math.nan},
        {"name": "c", "rel_diff": 0.5},
        {"name": "d", "rel_diff": None},
    ]
    check = {
        "figures": {"layers": 4, "layers_matched": 3, "layers_over": 2, "layers_unmatched": 1},
        "details": {"origin": "b", "origin_rule": "own error", "rows": rows},
    }
    figures = _drift_figures(check)
    assert figures is not None
    assert figures["worst_at"] == "b" and math.isnan(figures["worst_rel_diff"])
    assert (figures["compared"], figures["matched"], figures["unmatched"], figures["over"]) == (
        4,
        3,
        1,
        2,
    )
    assert _drift_figures({"figures": {}, "details": {}}) is None  # a check that errored


@pytest.mark.parametrize("net", NETS)
def test_the_networks_are_seeded_and_not_degenerate(net):
    import torch

    build = load_callable(f"../examples/torch/sweep_nets.py:{net}", SPECS)
    model, again = build(), build()
    image = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(image)
        assert torch.equal(logits, again(image))  # the same weights on every call
    assert logits.shape == (16, 10)
    assert not model.training
    assert 0.05 < logits.std().item() < 10  # neither vanishing nor exploding
    assert logits.std(dim=0).min().item() > 1e-3  # every logit depends on the input


@pytest.mark.slow
def test_the_torchvision_sweep(tmp_path):
    """`examples/torch/torchvision_sweep.yaml` where torchvision is installed (not in this project's
    environment; measured with torch 2.14.1 and torchvision 0.29.1: exit 0, resnet18 68 rows,
    48 matched; mobilenet_v3_small 156, 121; vit_b_16 125, 88; worst 1.7e-6 relative)."""
    pytest.importorskip("torchvision")
    result = _run(
        REPO / "examples" / "torch" / "torchvision_sweep.yaml", tmp_path / "out", tmp_path / "cache"
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (table,) = report["sweep"]
    assert [_net(r) for r in table["rows"]] == ["resnet18", "mobilenet_v3_small", "vit_b_16"]
    for row in table["rows"]:
        drift = row["drift"]
        assert row["status"] == "passed" and drift["origin"] is None and drift["over"] == 0
        assert drift["matched"] >= drift["compared"] / 2
        assert 1e-8 < drift["worst_rel_diff"] < 1e-5
