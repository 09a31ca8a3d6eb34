"""An ONNX Runtime upgrade gated: the churn MLP's export run by the installed onnxruntime and
by onnxruntime 1.20.1, installed by parityspec from the package index into its own
environment (downloads about 40 MB once: slow, and skipped without the index)."""

from __future__ import annotations

import json

import onnxruntime as ort
import pandas as pd
import pytest
import yaml

from tests.backends_ort.test_runtime_env import index_reachable
from tests.conftest import REPO, SPECS

CHURN = REPO / "examples" / "churn"
OLD = "1.20.1"  # a release with a wheel for Python 3.11 on manylinux x86_64

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def environments(tmp_path_factory):
    """One cache folder for the module: the environment is built by the first run only."""
    if not index_reachable():
        pytest.skip("pip cannot reach its package index from this machine")
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    import sys

    import skops.io as sio

    sys.path.insert(0, str(CHURN))
    from train import build_pipeline

    frame = pd.read_csv(CHURN / "churn.csv")
    model = build_pipeline().fit(frame.drop(columns=["churned"]), frame["churned"])
    path = tmp_path_factory.mktemp("pretrained") / "model.skops"
    sio.dump(model, path)
    return path


def _spec(tmp_path, model) -> str:
    old = {"runtime": {"onnxruntime": OLD}}
    spec = {
        "parityspec": 1,
        "name": "ort-versions",
        "data": {"path": str(CHURN / "churn.csv"), "target": "churned"},
        "model": {"task": "binary"},
        "backends": {
            "sklearn": {"kind": "sklearn", "path": str(model), "trusted": True},
            "onnx": {"kind": "onnx", "from": "sklearn"},
            "onnx_old": {"kind": "onnx", "from": "sklearn", **old},
            "int8": {"kind": "quantized", "from": "onnx"},
            "int8_old": {"kind": "quantized", "from": "onnx", **old},
        },
        "checks": [
            {"id": "upgrade", "type": "probability_parity", "between": ["onnx_old", "onnx"]},
            {"id": "labels", "type": "label_agreement", "between": ["onnx_old", "onnx"]},
            {"id": "int8", "type": "probability_parity", "between": ["int8_old", "int8"]},
        ],
    }
    path = tmp_path / "versions.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_an_upgrade_is_compared_with_both_versions_in_the_report(
    invoke, tmp_path, pretrained, environments, monkeypatch
):
    monkeypatch.setenv("PARITYSPEC_CACHE_DIR", str(environments))
    result = invoke("run", _spec(tmp_path, pretrained), "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    facts = {name: b["facts"] for name, b in report["backends"].items()}
    for new, old in (("onnx", "onnx_old"), ("int8", "int8_old")):
        assert facts[new]["runtime"] == {"onnxruntime": ort.__version__}
        requirement = f"onnxruntime=={OLD}"
        assert facts[old]["runtime"] == {"onnxruntime": OLD, "requirement": requirement}
    checks = {c["id"]: c for c in report["checks"]}
    for check in ("upgrade", "int8"):
        figures = checks[check]["figures"]
        assert checks[check]["status"] == "passed" and figures["samples"] == 6000
        assert 0 <= figures["max_abs_diff"] <= 1e-5  # measured: 0 (the same kernels)
    assert checks["labels"]["figures"]["agreement"] == 1


def test_the_bundled_spec_runs_from_the_built_environment(
    invoke, tmp_path, environments, monkeypatch
):
    monkeypatch.setenv("PARITYSPEC_CACHE_DIR", str(environments))
    spec = SPECS / "churn_ort_versions.yaml"
    first = invoke("run", spec, "--out", tmp_path / "a", "--no-cache")
    assert first.exit_code == 0, first.output
    again = invoke("run", spec, "--out", tmp_path / "b", "--no-cache")
    assert again.exit_code == 0 and "building an environment" not in again.output
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["backends"]["onnx_old"]["facts"]["runtime"]["onnxruntime"] == OLD
