"""ONNX files made by other tools: a ZipMap (sequence of maps) probability output reads as
the same probabilities as a plain tensor output, in the graph's order of its classes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml


@pytest.fixture(scope="module", params=["integers-unordered", "strings"])
def zipmap_model(request, tmp_path_factory):
    """A logistic regression on iris (classes [3, 1, 7] or names), exported twice: with
    skl2onnx's default ZipMap output, and with a plain probability tensor."""
    import skops.io as sio
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp(request.param)
    features, codes = load_iris(return_X_y=True, as_frame=True)
    features.columns = ["f0", "f1", "f2", "f3"]
    names = [3, 1, 7] if request.param == "integers-unordered" else ["setosa", "versicolor", "x"]
    target = np.array(names)[codes.to_numpy()]
    model = LogisticRegression(max_iter=1000).fit(features, target)
    sio.dump(model, folder / "model.skops")
    for name, zipmap in (("zipmap", True), ("plain", False)):
        exported = to_onnx(
            model,
            features[:1].to_numpy(np.float32),
            options={id(model): {"zipmap": zipmap}},
            target_opset={"": 17, "ai.onnx.ml": 3},
        )
        (folder / f"{name}.onnx").write_bytes(exported.SerializeToString())
    features.assign(y=target).to_csv(folder / "rows.csv", index=False)
    return folder


def test_a_zipmap_output_reads_as_the_plain_probabilities(invoke, zipmap_model):
    folder = zipmap_model
    spec = {
        "parityspec": 1,
        "name": "zipmap",
        "data": {"path": str(folder / "rows.csv"), "target": "y"},
        "model": {"task": "multiclass"},
        "backends": {
            "sk": {"kind": "sklearn", "path": str(folder / "model.skops")},
            "plain": {"kind": "onnx", "path": str(folder / "plain.onnx")},
            "zipmap": {"kind": "onnx", "path": str(folder / "zipmap.onnx")},
        },
        "checks": [
            {"id": "same", "type": "probability_parity", "between": ["plain", "zipmap"]},
            {"id": "sk", "type": "probability_parity", "between": ["sk", "zipmap"]},
            {"id": "labels", "type": "label_agreement", "between": ["sk", "zipmap"]},
        ],
    }
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
    out = folder / "out"
    result = invoke("run", folder / "spec.yaml", "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["same"]["figures"]["max_abs_diff"] == 0.0
    assert checks["labels"]["figures"]["agreement"] == 1.0
    assert (
        report["backends"]["zipmap"]["facts"]["classes"]
        == report["backends"]["plain"]["facts"]["classes"]
    )


def test_a_warm_run_names_the_users_model_file_as_the_cold_run_did(invoke, zipmap_model):
    """A restored `path:` model is the spec's own file (its bytes are in the key), not a copy
    under artifacts/: the report is the same, cold or warm, outside its run section."""
    folder = zipmap_model
    spec = {
        "parityspec": 1,
        "name": "user-file",
        "data": {"path": str(folder / "rows.csv"), "target": "y"},
        "model": {"task": "multiclass"},
        "backends": {
            "sk": {"kind": "sklearn", "path": str(folder / "model.skops")},
            "zipmap": {"kind": "onnx", "path": "zipmap.onnx"},
        },
        "checks": [{"id": "p", "type": "probability_parity", "between": ["sk", "zipmap"]}],
    }
    (folder / "warm.yaml").write_text(yaml.safe_dump(spec))
    reports = []
    for out in ("cold", "warm"):
        result = invoke("run", folder / "warm.yaml", "--out", folder / out)
        assert result.exit_code == 0, result.output
        reports.append(json.loads((folder / out / "report.json").read_text()))
    assert "load:zipmap" in reports[1]["run"]["from_cache"]
    cold, warm = (r.pop("run") and r for r in reports)
    assert warm == cold
    assert not (folder / "warm" / "artifacts" / "zipmap" / "zipmap.onnx").exists()
