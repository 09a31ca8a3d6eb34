"""An ONNX backend converted to float16 (`kind: float16`, issue 16.6) on the bundled churn MLP
and small CNN: what stays float32, the figures against float32, the profile they pass, the
cached model reopened, and the specs refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from parityspec.errors import ExitCode
from tests.conftest import REPO, SPECS


def _report(folder) -> dict:
    return json.loads((folder / "report.json").read_text())


def _figures(folder) -> dict[str, dict]:
    return {c["id"]: c["figures"] for c in _report(folder)["checks"]}


def _churn_spec(folder, fp16: dict | None = None, checks: list | None = None) -> str:
    spec = yaml.safe_load((SPECS / "churn_fp16.yaml").read_text())
    spec["backends"]["sklearn"]["train"] = str(REPO / "examples/churn/train.py:build_pipeline")
    spec["data"]["path"] = str(REPO / "examples/churn/churn.csv")
    spec["backends"]["fp16"].update(fp16 or {})
    spec["checks"] += checks or []
    spec["report"]["dir"] = str(folder / "out")
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_churn_mlp_in_float16_passes_lenient_and_states_what_stayed_float32(invoke, tmp_path):
    result = invoke("run", SPECS / "churn_fp16.yaml", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    figures = _figures(tmp_path)
    parity = figures["fp16-parity"]
    # float16 rounding, well above float32's (1e-7) and far below lenient's 0.08.
    assert 1e-5 < parity["max_abs_diff"] < 1e-3
    assert parity["mean_abs_diff"] < 2e-4
    assert figures["fp16-labels"]["agreement"] >= 0.999
    facts = _report(tmp_path)["backends"]["fp16"]["facts"]
    # The preprocessing (ai.onnx.ml ops) and the Concats stay float32; the MLP converts.
    assert facts["float32_ops"] == {
        "ArrayFeatureExtractor": 1,
        "Concat": 4,
        "Imputer": 1,
        "OneHotEncoder": 4,
        "Scaler": 1,
    }
    assert {"MatMul": 3, "Add": 3, "Relu": 2}.items() <= facts["converted_ops"].items()
    assert facts["casts_added"] > 0 and facts["keep_io_types"] is True
    # 1,300 weights halve by 2.6 kB; 28 Casts add more than that: the file grows.
    ratio = facts["size_bytes"] / facts["source_size_bytes"]
    assert facts["size_ratio"] == pytest.approx(ratio, abs=1e-4)
    assert facts["size_ratio"] > 1


def test_the_converted_graph_is_valid_onnx_and_agrees_with_the_reference_evaluator(
    invoke, tmp_path
):
    import onnx

    spec = _churn_spec(tmp_path)
    raw = yaml.safe_load((tmp_path / "spec.yaml").read_text())
    raw["backends"]["oracle"] = {"kind": "onnx_reference", "from": "fp16"}
    raw["checks"] = [{"id": "k", "type": "probability_parity", "between": ["oracle", "fp16"]}]
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(raw))
    result = invoke("run", spec)
    assert result.exit_code == 0, result.output
    onnx.checker.check_model(str(tmp_path / "out/artifacts/fp16/model.fp16.onnx"))
    # numpy's float16 against ONNX Runtime's kernels: a float16 ulp at most apart.
    assert _figures(tmp_path / "out")["k"]["max_abs_diff"] <= 2**-11


def test_without_concat_on_the_block_list_the_churn_graph_does_not_load(invoke, tmp_path):
    """The default block list is measured: the converter's own list leaves a Concat joining
    float32 and float16, which ONNX Runtime refuses; the error says what to add."""
    result = invoke("run", _churn_spec(tmp_path, {"op_block_list": []}))
    assert result.exit_code == ExitCode.STEP_ERROR, result.output
    line = next(line for line in result.output.splitlines() if "convert:fp16" in line)
    assert "the float16 graph does not load: add Concat to backends.fp16.op_block_list" in line


def test_a_cached_conversion_is_reopened_for_a_check_that_needs_the_model(invoke, tmp_path):
    spec = _churn_spec(tmp_path)
    assert invoke("run", spec).exit_code == 0
    cold = _figures(tmp_path / "out")
    bench = {"id": "bench", "type": "benchmark", "between": ["onnx", "fp16"], "repeats": 1}
    warm_spec = _churn_spec(tmp_path, checks=[bench])
    result = invoke("run", warm_spec)
    assert result.exit_code == 0, result.output
    report = _report(tmp_path / "out")
    assert "convert:fp16" in report["run"]["from_cache"]
    warm = _figures(tmp_path / "out")
    assert {k: warm[k] for k in cold} == cold
    assert warm["bench"]  # the reopened session ran the timed calls


def _cnn_spec(folder, fp16: dict, profile: str, tensors: bool = True) -> str:
    spec = yaml.safe_load((SPECS / "cnn.yaml").read_text())
    spec["backends"] = {
        "torch": {"kind": "torch", "module": str(REPO / "examples/torch/nets.py:small_cnn")},
        "onnx": spec["backends"]["onnx"],
        "fp16": {"kind": "float16", "from": "onnx", **fp16},
    }
    del spec["profiles"]
    spec["checks"] = [
        {"id": "logits", "type": "output_parity", "between": ["onnx", "fp16"], "profile": profile},
        {"id": "tensors", "type": "tensor_drift", "between": ["onnx", "fp16"], "profile": profile},
    ][: 2 if tensors else 1]
    spec["report"]["dir"] = str(folder / "out")
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_small_cnn_in_float16_fails_default_and_passes_lenient(invoke, tmp_path):
    """default's rtol (1e-4) is below float16's own rounding (2^-11 = 4.9e-4 relative):
    every float16 model fails it; lenient's element rule and distance gates fit."""
    result = invoke("run", _cnn_spec(tmp_path, {}, "default"))
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    assert _figures(tmp_path / "out")["logits"]["violation_fraction"] > 0.1
    result = invoke("run", _cnn_spec(tmp_path, {}, "lenient"))
    assert result.exit_code == 0, result.output
    figures = _figures(tmp_path / "out")
    logits = figures["logits"]
    assert 1e-5 < logits["max_abs_diff"] < 1e-3
    assert logits["snr_db"] > 60 and logits["psnr_db"] > 60
    # Every tensor keeps its name through the conversion: all are matched.
    assert figures["tensors"]["tensors_matched"] == figures["tensors"]["tensors"] > 0
    facts = _report(tmp_path / "out")["backends"]["fp16"]["facts"]
    assert facts["float32_ops"] == {} and facts["converted_ops"]["Conv"] == 2
    assert facts["size_ratio"] < 1  # the weights halve


def test_float16_inputs_and_outputs_are_fed_and_widened(invoke, tmp_path):
    import onnx

    result = invoke("run", _cnn_spec(tmp_path, {"keep_io_types": False}, "lenient", tensors=False))
    assert result.exit_code == 0, result.output
    graph = onnx.load(str(tmp_path / "out/artifacts/fp16/model.fp16.onnx")).graph
    assert {v.type.tensor_type.elem_type for v in [*graph.input, *graph.output]} == {
        onnx.TensorProto.FLOAT16
    }
    # The float16 outputs reach the checks widened, value for value.
    from parityspec.backends import float16
    from parityspec.backends.base import LoadedModel
    from parityspec.backends.onnx import OnnxRunner, open_session

    path = tmp_path / "out/artifacts/fp16/model.fp16.onnx"
    session = open_session(path)
    runner = OnnxRunner(session, path, "tensor", None, ["logits"])
    image = np.random.default_rng(0).normal(size=(4, 3, 16, 16)).astype(np.float16)
    predicted = float16.predict(LoadedModel("fp16", "float16", runner), {"image": image})
    raw = session.run(None, {"image": image})[0]
    assert raw.dtype == np.float16 and predicted["logits"].dtype == np.float32
    np.testing.assert_array_equal(predicted["logits"], raw)


@pytest.mark.parametrize(
    ("fp16", "expected"),
    [
        (
            {"from": "sklearn"},
            "backends.fp16.from: backend kind 'float16' cannot be made from 'sklearn' "
            "(kind 'sklearn') (hint: `from` must name a backend of kind onnx)",
        ),
        (
            {"op_block_list": [""]},
            "backends.fp16.op_block_list[0]: string should have at least 1 character",
        ),
        ({"keep_io_types": "sometimes"}, "backends.fp16.keep_io_types"),
    ],
)
def test_bad_float16_backends_are_exit_2_at_validate(invoke, tmp_path, fp16, expected):
    result = invoke("validate", _churn_spec(tmp_path, fp16))
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert expected in result.output


@pytest.mark.parametrize("kind", ["quantized", "float16"])
def test_a_float16_graph_is_not_converted_again(invoke, tmp_path, kind):
    """ONNX Runtime cannot load the quantization of a float16 graph (it passed validate and
    failed at run before): refused at validate, as a quantized source is."""
    path = _churn_spec(tmp_path)
    spec = yaml.safe_load(Path(path).read_text())
    spec["backends"]["again"] = {"kind": kind, "from": "fp16"}
    Path(path).write_text(yaml.safe_dump(spec))
    result = invoke("validate", path)
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert f"backends.again.from: backend kind '{kind}' cannot be made from 'fp16'" in (
        result.output
    )
