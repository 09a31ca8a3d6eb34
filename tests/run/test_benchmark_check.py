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
