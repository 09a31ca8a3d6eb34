"""The benchmark check's gates. Only their logic is tested here: limits far from any real
figure (speed itself is measured in benchmarks/, never asserted in a timed test)."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import REPO


def _spec(tmp_path, **gates) -> str:
    spec = {
        "parityspec": 1,
        "name": "bench",
        "data": {"synthetic": {"rows": 64, "seed": 0}},
        "model": {"task": "tensor", "inputs": [{"name": "features", "shape": [30]}]},
        "backends": {
            "torch": {"kind": "torch", "module": f"{REPO}/examples/torch/nets.py:mlp"},
            "onnx": {"kind": "onnx", "from": "torch"},
            "int8": {"kind": "quantized", "from": "onnx"},
        },
        "checks": [
            {
                "id": "b",
                "type": "benchmark",
                "between": ["onnx", "int8"],
                "batch_sizes": [8],
                "repeats": 3,
                **gates,
            }
        ],
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


@pytest.mark.parametrize(
    ("gates", "code"),
    [
        ({"min_speedup": 1e-6}, 0),
        ({"min_speedup": 1e6}, 1),
        ({"max_size_ratio": 0.9}, 0),
        ({"max_size_ratio": 0.01}, 1),
    ],
)
def test_gates_decide_the_verdict(invoke, tmp_path, gates, code):
    result = invoke("run", _spec(tmp_path, **gates), "--out", tmp_path / "r")
    assert result.exit_code == code, result.output
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    timed = report["run"]["timings"]["b"]["gates"]
    assert [g["ok"] for g in timed] == ([code == 0] if "min_speedup" in gates else [])


def test_runtime_latency_is_the_runtimes_own_call(invoke, tmp_path):
    """The method, not a speed: the check's runtime p50 for an ONNX model is of the order of
    a bare `InferenceSession.run` loop timed in the same process on the same batch (the
    ratio of two measurements side by side), while its end-to-end figure includes turning
    rows into feeds. Before runtime latencies existed, the p50 was mostly that conversion."""
    import time

    import numpy as np
    import onnxruntime as ort
    from sklearn.datasets import load_breast_cancer

    spec = {
        "parityspec": 1,
        "name": "bench-tabular",
        "data": {"sklearn": "breast_cancer"},
        "model": {"task": "binary"},
        "backends": {
            "sk": {"kind": "sklearn", "train": f"{REPO}/tests/data/valid/models.py:logistic"},
            "onnx": {"kind": "onnx", "from": "sk"},
        },
        "checks": [
            {
                "id": "b",
                "type": "benchmark",
                "between": ["sk", "onnx"],
                "batch_sizes": [1],
                "repeats": 200,
            }
        ],
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = invoke("run", path, "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    timings = json.loads((tmp_path / "r" / "report.json").read_text())["run"]["timings"]["b"]
    runtime = timings["latency"]["onnx"]["1"]["p50_ms"]
    end_to_end = timings["end_to_end_latency"]["onnx"]["1"]["p50_ms"]

    session = ort.InferenceSession(
        str(tmp_path / "r" / "artifacts" / "onnx" / "model.onnx"),
        providers=["CPUExecutionProvider"],
    )
    (only,) = session.get_inputs()  # skl2onnx's export: one input of the 30 columns
    feeds = {only.name: load_breast_cancer().data[:1].astype(np.float32)}
    session.run(None, feeds)
    seconds = []
    for _ in range(200):
        started = time.perf_counter()
        session.run(None, feeds)
        seconds.append(time.perf_counter() - started)
    bare = float(np.median(seconds)) * 1000
    assert runtime < 10 * bare, (runtime, bare)  # the conversion alone made it ~30x
    assert end_to_end > 2 * runtime, (end_to_end, runtime)


def test_a_warm_run_reports_the_cached_timings_and_rebench_measures_again(invoke, tmp_path):
    spec = _spec(tmp_path, max_size_ratio=0.9)

    def timings(*options: str) -> tuple[dict, dict]:
        result = invoke("run", spec, "--out", tmp_path / "r", *options)
        assert result.exit_code == 0, result.output
        report = json.loads((tmp_path / "r" / "report.json").read_text())
        return report["run"], report["checks"][0]

    cold, cold_check = timings()
    warm, warm_check = timings()
    assert "check:b" not in cold["from_cache"] and "check:b" in warm["from_cache"]
    assert warm["timings"] == cold["timings"]  # the same measurement, restored
    assert warm_check == cold_check
    markdown = (tmp_path / "r" / "report.md").read_text()
    assert "from the step cache; `--rebench` measures again" in markdown
    again, again_check = timings("--rebench")
    assert "check:b" not in again["from_cache"]
    assert again["timings"] != cold["timings"]  # measured anew (repeats of float timings)
    assert again_check == cold_check  # sizes and verdict do not depend on the timings
    after, _ = timings()
    assert after["timings"] == again["timings"]  # the new measurement replaced the old
