"""Every bundled spec runs for real, with the exit code its README entry promises."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from tests.conftest import REPO, SPECS

EXPECTED_EXIT = {
    "churn.yaml": 0,
    "iris.yaml": 0,
    "diabetes.yaml": 0,
    "churn_forest.yaml": 1,
    "churn_forest_search.yaml": 1,
    "churn_xgboost.yaml": 0,
    "churn_xgboost_scaled.yaml": 1,
    "churn_lightgbm.yaml": 0,
    "churn_catboost.yaml": 0,
    "churn_sweep.yaml": 1,
    "torch_sweep.yaml": 0,
    "churn_histgb.yaml": 0,
    "churn_oracle.yaml": 0,
    # Its older onnxruntime is installed from the package index into the cache, once.
    "churn_ort_versions.yaml": 0,
    "churn_fp16.yaml": 0,
    "churn_torch.yaml": 0,
    "cnn.yaml": 0,
    "cnn_fault.yaml": 1,
    "transformer.yaml": 0,
    "mlp_int8.yaml": 0,
}


def test_every_spec_has_an_expected_exit():
    assert {p.name for p in SPECS.glob("*.yaml")} == set(EXPECTED_EXIT)


@pytest.mark.parametrize("name", sorted(EXPECTED_EXIT))
def test_bundled_spec_runs(invoke, tmp_path, name):
    result = invoke("run", SPECS / name, "--out", tmp_path)
    assert result.exit_code == EXPECTED_EXIT[name], result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["exit_code"] == EXPECTED_EXIT[name]
    assert (tmp_path / "report.md").is_file()
    assert all(step["status"] == "ok" for step in report["steps"])


def test_churn_writes_the_seed_artifacts(invoke, tmp_path):
    assert invoke("run", SPECS / "churn.yaml", "--out", tmp_path).exit_code == 0
    onnx_dir, int8_dir = tmp_path / "artifacts" / "onnx", tmp_path / "artifacts" / "int8"
    features = json.loads((onnx_dir / "onnx_features.json").read_text())
    metadata = json.loads((onnx_dir / "onnx_metadata.json").read_text())
    assert (onnx_dir / "model.onnx").is_file() and (int8_dir / "model.int8.onnx").is_file()
    assert features["categories"]["contract"] == ["month-to-month", "one-year", "two-year"]
    assert {i["dtype"] for i in features["inputs"]} == {"float32", "str"}
    assert metadata["decision_threshold"] == 0.5
    assert metadata["provenance"]["opset"] == 17
    seed = json.loads((tmp_path / "artifacts" / "int8-parity" / "parity_report.json").read_text())
    assert set(seed) == {
        "samples",
        "max_abs_diff",
        "mean_abs_diff",
        "abs_tol",
        "mean_tol",
        "passed",
    }
    assert seed["passed"] is True and 0 < seed["max_abs_diff"] < seed["abs_tol"]


@pytest.mark.parametrize("name", ["churn.yaml", "cnn.yaml"])
def test_report_json_is_byte_identical_outside_run_facts(invoke, tmp_path, name):
    """Without the cache, so every export and quantization really runs twice: the model
    hashes in the report then show that skl2onnx, the dynamo exporter and ONNX Runtime's
    quantizer (dynamic and static) write the same bytes."""
    texts = []
    for attempt in ("a", "b"):
        out = tmp_path / attempt
        assert invoke("run", SPECS / name, "--out", out, "--no-cache").exit_code == 0
        report = json.loads((out / "report.json").read_text())
        report.pop("run")
        texts.append(json.dumps(report, sort_keys=True))
        # The Markdown too, but for its section of measured timings.
        assert _without_timings(out / "report.md") == _without_timings(tmp_path / "a" / "report.md")
    assert texts[0] == texts[1]


def test_tightened_tolerance_fails_and_markdown_names_it(invoke, tmp_path):
    spec = _churn_with_absolute_paths()
    for check in spec["checks"]:
        if check["id"] == "int8-parity":
            check["abs_tol"] = 0.001
    copy = _copy_spec(tmp_path, spec)
    result = invoke("run", copy, "--out", tmp_path / "out")
    assert result.exit_code == 1
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "❌ `int8-parity`" in markdown
    assert "**max_abs_diff = " in markdown and "<= abs_tol 0.001" in markdown
    assert "int8-parity" in result.output and "FAIL" in result.output


def test_churn_forest_explains_its_failure(invoke, tmp_path):
    assert invoke("run", SPECS / "churn_forest.yaml", "--out", tmp_path).exit_code == 1
    checks = {c["id"]: c for c in json.loads((tmp_path / "report.json").read_text())["checks"]}
    parity = checks["onnx-parity"]
    assert parity["status"] == "failed"
    assert parity["figures"]["max_abs_diff"] > parity["tolerances"]["abs_tol"] == 0.04
    assert parity["details"]["worst_samples"][0]["features"]["contract"]
    assert "quantization changed nothing" in checks["int8-parity"]["reason"]
    steps = checks["onnx-steps"]["details"]
    assert steps["origin"] == "preprocess/numeric/scale"
    status = {row["name"]: row["status"] for row in steps["rows"]}
    assert status["preprocess/numeric/impute"] == "ok"
    assert status["classifier"] == "over"


def test_cnn_reports_layer_and_int8_tensor_tables(invoke, tmp_path):
    assert invoke("run", SPECS / "cnn.yaml", "--out", tmp_path).exit_code == 0
    checks = {c["id"]: c for c in json.loads((tmp_path / "report.json").read_text())["checks"]}
    layers = checks["onnx-layers"]["details"]["rows"]
    assert [r["name"] for r in layers if r["name"].startswith("relu")] == ["relu", "relu#2"]
    assert checks["onnx-layers"]["details"]["origin"] is None
    tensors = checks["int8-tensors"]["details"]["rows"]
    assert any(r["sqnr_db"] is not None and r["max_abs_diff"] > 0 for r in tensors)
    markdown = (tmp_path / "report.md").read_text()
    assert "`onnx-layers`: layer drift" in markdown and "`int8-tensors`: tensor drift" in markdown


def test_injected_fault_names_its_layer_as_origin(invoke, tmp_path):
    assert invoke("run", SPECS / "cnn_fault.yaml", "--out", tmp_path).exit_code == 1
    check = json.loads((tmp_path / "report.json").read_text())["checks"][0]
    assert check["details"]["origin"] == "bn2"  # conv2 is fused into bn2 by the exporter
    before = [r for r in check["details"]["rows"][:5] if r["status"] != "unmatched"]
    assert before and all(r["status"] == "ok" for r in before)
    assert "**Drift origin: `bn2`**" in (tmp_path / "report.md").read_text()


def test_unconvertible_model_errors_and_the_rest_still_runs(invoke, tmp_path):
    spec = {
        "parityspec": 1,
        "name": "bad-export",
        "data": {"sklearn": "breast_cancer", "split": {"test_size": 0.3}},
        "model": {"task": "binary"},
        "backends": {
            "custom": {"kind": "sklearn", "train": "unconvertible.py:build"},
            "custom-onnx": {"kind": "onnx", "from": "custom"},
            "forest": {"kind": "sklearn", "train": "models.py:iris_forest"},
            "forest-onnx": {"kind": "onnx", "from": "forest"},
        },
        "checks": [
            {"id": "custom", "type": "probability_parity", "between": ["custom", "custom-onnx"]},
            {"id": "forest", "type": "label_agreement", "between": ["forest", "forest-onnx"]},
        ],
    }
    folder = tmp_path / "spec"
    folder.mkdir()
    shutil.copy(REPO / "tests" / "data" / "models" / "unconvertible.py", folder)
    shutil.copy(REPO / "examples" / "sklearn" / "models.py", folder)
    result = invoke("run", _copy_spec(folder, spec), "--out", tmp_path / "out")
    assert result.exit_code == 3, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    steps = {s["id"]: s for s in report["steps"]}
    assert steps["export:custom-onnx"]["status"] == "error"
    assert "MajorityVote" in steps["export:custom-onnx"]["reason"]
    assert steps["predict:custom-onnx"]["status"] == "skipped"
    checks = {c["id"]: c["status"] for c in report["checks"]}
    assert checks == {"custom": "skipped", "forest": "passed"}


def test_data_columns_that_do_not_match_the_model_exit_2(invoke, tmp_path):
    spec = _churn_with_absolute_paths()
    spec["data"]["features"] = ["tenure_months", "no_such_column"]
    result = invoke("run", _copy_spec(tmp_path, spec), "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "no_such_column" in result.output


def _without_timings(markdown_file) -> str:
    text = markdown_file.read_text()
    start = text.find("### Timings")
    return text if start < 0 else text[:start] + text[text.index("<sub>", start) :]


def _churn_with_absolute_paths() -> dict:
    spec = yaml.safe_load((SPECS / "churn.yaml").read_text())
    spec["data"]["path"] = str(REPO / "examples" / "churn" / "churn.csv")
    spec["backends"]["sklearn"]["train"] = f"{REPO}/examples/churn/train.py:build_pipeline"
    return spec


def _copy_spec(folder, spec: dict):
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_benchmark_keeps_timings_out_of_the_deterministic_body(invoke, tmp_path):
    assert invoke("run", SPECS / "mlp_int8.yaml", "--out", tmp_path).exit_code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    check = next(c for c in report["checks"] if c["id"] == "int8-benchmark")
    assert check["figures"]["size_ratio"] < 0.5  # INT8 weights: about a quarter of fp32
    assert "latency" not in json.dumps(check)
    latency = report["run"]["timings"]["int8-benchmark"]["latency"]
    assert set(latency) == {"onnx", "int8"} and set(latency["int8"]) == {"1", "256", "2048"}
    assert all(row["p50_ms"] <= row["p99_ms"] for row in latency["int8"].values())
