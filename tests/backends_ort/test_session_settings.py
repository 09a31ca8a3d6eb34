"""ONNX Runtime's session settings as backend fields: optimization level, providers, intra-op
threads (`threads`, the former name, still read). Each enters the cache key, is applied to
the session and stated in the report; a provider the runtime lacks is exit 2 naming what to
install. CUDA and TensorRT run only where onnxruntime has them (skipped otherwise)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from parityspec.api import plan
from parityspec.errors import ExitCode, InputError, SpecError
from tests.conftest import REPO

LEVELS = ("disabled", "basic", "extended", "all")


def _spec(folder, backends: dict, checks: list | None = None) -> str:
    spec = {
        "parityspec": 1,
        "name": "ort-settings",
        "data": {"sklearn": "iris", "split": {"test_size": 0.3, "seed": 0}},
        "model": {"task": "multiclass"},
        "backends": {
            "sk": {
                "kind": "sklearn",
                "train": str(REPO / "examples/sklearn/models.py:iris_classifier"),
            },
            **backends,
        },
        "checks": checks
        or [
            {"id": f"{name}-parity", "type": "probability_parity", "between": ["sk", name]}
            for name in backends
        ],
        "report": {"dir": str(folder / "out")},
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return str(path)


def test_each_level_is_applied_stated_and_keyed(invoke, tmp_path):
    import onnxruntime as ort

    backends = {
        f"onnx-{level}": {"kind": "onnx", "from": "sk", "graph_optimization_level": level}
        for level in LEVELS
    }
    spec = _spec(tmp_path, backends)
    result = invoke("run", spec)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out/report.json").read_text())
    for level in LEVELS:
        session = report["backends"][f"onnx-{level}"]["facts"]["session"]
        assert session == {
            "graph_optimization_level": level,
            "intra_op_threads": 0,
            "providers": ["CPUExecutionProvider"],
            "providers_used": ["CPUExecutionProvider"],
        }
    steps = {s.id: s.key for s in plan(spec).steps}
    assert len({steps[f"export:onnx-{level}"] for level in LEVELS}) == len(LEVELS)
    # The session really runs at the level asked for.
    from parityspec.backends.onnx import SessionSettings, open_session

    model = tmp_path / "out/artifacts/onnx-all/model.onnx"
    expected = {
        "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    for level, value in expected.items():
        session = open_session(model, SessionSettings(3, level))
        options = session.get_session_options()
        assert (options.graph_optimization_level, options.intra_op_num_threads) == (value, 3)


def test_a_quantized_backend_takes_the_same_settings(invoke, tmp_path):
    model = _tiny_model(tmp_path)
    spec = {
        "parityspec": 1,
        "name": "ort-int8",
        "data": {"synthetic": {"rows": 64}},
        "model": {"task": "tensor", "inputs": [{"name": "x", "shape": [4]}]},
        "backends": {
            "onnx": {"kind": "onnx", "path": str(model)},
            "int8": {
                "kind": "quantized",
                "from": "onnx",
                "graph_optimization_level": "basic",
                "threads": 1,
            },
        },
        "checks": [
            {"id": "int8", "type": "output_parity", "between": ["onnx", "int8"], "atol": 0.1}
        ],
        "report": {"dir": str(tmp_path / "out")},
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    result = invoke("run", tmp_path / "spec.yaml")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out/report.json").read_text())
    session = report["backends"]["int8"]["facts"]["session"]
    assert (session["graph_optimization_level"], session["intra_op_threads"]) == ("basic", 1)
    assert report["backends"]["int8"]["facts"]["quantized_ops"]


def test_threads_is_read_as_intra_op_threads_with_the_same_key(tmp_path):
    from parityspec.backends.onnx import Spec

    assert Spec.model_validate({"kind": "onnx", "from": "sk", "threads": 2}).intra_op_threads == 2
    keys = []
    for field in ("threads", "intra_op_threads"):
        folder = tmp_path / field
        folder.mkdir()
        spec = _spec(folder, {"onnx": {"kind": "onnx", "from": "sk", field: 2}})
        keys.append(next(s.key for s in plan(spec).steps if s.id == "export:onnx"))
    assert keys[0] == keys[1]
    default = _spec(tmp_path, {"onnx": {"kind": "onnx", "from": "sk"}})
    assert keys[0] != next(s.key for s in plan(default).steps if s.id == "export:onnx")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"graph_optimization_level": "most"}, "graph_optimization_level: 'most' is not allowed"),
        ({"providers": ["CUDAProvider"]}, "did you mean 'CUDAExecutionProvider'?"),
        ({"providers": []}, "backends.onnx.providers"),
        (
            {"providers": ["CPUExecutionProvider", "CPUExecutionProvider"]},
            "each provider at most once",
        ),
        ({"threads": 1, "intra_op_threads": 1}, "give intra_op_threads only"),
        ({"intra_op_threads": -1}, "intra_op_threads: should be greater than or equal to 0"),
    ],
)
def test_bad_settings_are_refused_at_validate(invoke, tmp_path, fields, expected):
    spec = _spec(tmp_path, {"onnx": {"kind": "onnx", "from": "sk", **fields}})
    result = invoke("validate", spec)
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert expected in result.output
    with pytest.raises(SpecError):
        plan(spec)


def _absent(provider: str) -> None:
    import onnxruntime as ort

    if provider in ort.get_available_providers():
        pytest.skip(f"this onnxruntime has {provider}")


@pytest.mark.parametrize("kind", ["onnx", "quantized"])
def test_a_provider_the_runtime_lacks_is_exit_2_naming_what_to_install(invoke, tmp_path, kind):
    _absent("CUDAExecutionProvider")
    gpu = {"providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]}
    backends = {"onnx": {"kind": "onnx", "from": "sk", **(gpu if kind == "onnx" else {})}}
    if kind == "quantized":
        backends["int8"] = {"kind": "quantized", "from": "onnx", **gpu}
    spec = _spec(tmp_path, backends)
    result = invoke("run", spec)
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    step = "export:onnx" if kind == "onnx" else "quantize:int8"
    line = next(line for line in result.output.splitlines() if step in line)
    assert "CUDAExecutionProvider is not in the installed onnxruntime" in line
    assert "comes with onnxruntime-gpu" in line
    # Refused before the model is made: no export or quantization was written.
    made = tmp_path / "out/artifacts" / ("onnx" if kind == "onnx" else "int8")
    assert not list(made.glob("*.onnx"))


@pytest.mark.filterwarnings("ignore:Specified provider")
def test_a_provider_that_falls_back_to_the_cpu_is_refused(tmp_path, monkeypatch):
    """ONNX Runtime runs on the CPU, with a warning, a provider it lists but cannot start:
    the figures would be the CPU's under the provider's name."""
    import onnxruntime as ort

    from parityspec.backends.onnx import SessionSettings, open_session

    _absent("CUDAExecutionProvider")
    model = _tiny_model(tmp_path)
    listed = [*ort.get_available_providers(), "CUDAExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: listed)
    settings = SessionSettings(providers=("CUDAExecutionProvider", "CPUExecutionProvider"))
    with pytest.raises(InputError, match="CUDAExecutionProvider did not start"):
        open_session(model, settings)


def _tiny_model(folder):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor("w", TensorProto.FLOAT, [4, 3], np.linspace(-1, 1, 12))],
    )
    path = folder / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.mark.parametrize("provider", ["CUDAExecutionProvider", "TensorrtExecutionProvider"])
def test_a_gpu_provider_agrees_with_the_cpu(tmp_path, provider):
    """Runs where onnxruntime has the provider and a device starts it; skipped otherwise."""
    import onnxruntime as ort

    from parityspec.backends.onnx import SessionSettings, open_session

    if provider not in ort.get_available_providers():
        pytest.skip(f"onnxruntime {ort.__version__} has no {provider}")
    model = _tiny_model(tmp_path)
    try:
        gpu = open_session(model, SessionSettings(providers=(provider, "CPUExecutionProvider")))
    except InputError as error:
        pytest.skip(f"{provider} is installed but did not start: {error}")
    cpu = open_session(model)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    assert gpu.get_providers()[0] == provider
    np.testing.assert_allclose(gpu.run(None, {"x": x})[0], cpu.run(None, {"x": x})[0], atol=1e-3)
