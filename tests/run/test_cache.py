"""The step cache: a warm run restores every step; any change invalidates what it feeds."""

from __future__ import annotations

import json

import yaml

from parityspec.api import RunOptions, run
from tests.conftest import REPO, SPECS


def _spec(tmp_path, **onnx_changes):
    spec = yaml.safe_load((SPECS / "churn.yaml").read_text())
    spec["data"]["path"] = str(REPO / "examples" / "churn" / "churn.csv")
    spec["backends"]["sklearn"]["train"] = f"{REPO}/examples/churn/train.py:build_pipeline"
    spec["backends"]["onnx"].update(onnx_changes)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_warm_run_restores_every_step(tmp_path):
    spec, cache = _spec(tmp_path), tmp_path / "cache"
    cold = run(spec, RunOptions(out=tmp_path / "cold", cache_dir=cache))
    warm = run(spec, RunOptions(out=tmp_path / "warm", cache_dir=cache))
    assert cold.report["run"]["from_cache"] == []
    # The data steps and the trained model as facts only: nothing that runs needs them.
    assert warm.report["run"]["from_cache"] == [s["id"] for s in warm.report["steps"]]
    assert "int8-benchmark" in warm.report["run"]["timings"]  # measured by the cold run
    for report in (cold.report, warm.report):
        report.pop("run")
    assert json.dumps(cold.report, sort_keys=True) == json.dumps(warm.report, sort_keys=True)
    assert (tmp_path / "warm" / "artifacts" / "int8" / "model.int8.onnx").is_file()
    assert (tmp_path / "warm" / "artifacts" / "onnx" / "onnx_features.json").is_file()


def test_a_changed_step_reruns_with_everything_downstream(tmp_path):
    cache = tmp_path / "cache"
    run(_spec(tmp_path), RunOptions(out=tmp_path / "a", cache_dir=cache))
    changed = run(_spec(tmp_path, opset=15), RunOptions(out=tmp_path / "b", cache_dir=cache))
    # The export reruns, so it needs the trained model: only predict:sklearn is reused.
    assert changed.report["run"]["from_cache"] == ["predict:sklearn"]


def test_no_cache_runs_everything_and_stores_nothing(tmp_path):
    cache = tmp_path / "cache"
    outcome = run(_spec(tmp_path), RunOptions(out=tmp_path / "a", cache_dir=cache, use_cache=False))
    assert outcome.report["run"]["from_cache"] == []
    assert not cache.exists()


def test_cli_no_cache_and_cache_clear(invoke, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("PARITYSPEC_CACHE_DIR", str(cache))
    spec = _spec(tmp_path)
    assert invoke("run", spec, "--out", tmp_path / "a", "--no-cache", "-q").exit_code == 0
    assert not cache.exists()
    assert invoke("run", spec, "--out", tmp_path / "b", "-q").exit_code == 0
    cleared = invoke("cache", "clear")
    # data load and split, build, export, quantize, the three predictions, the seven checks
    assert cleared.exit_code == 0 and "removed 15 cached step(s)" in cleared.output
    assert not cache.exists()
