"""The torch backend beyond float32 on the CPU: reduced precision, CUDA, torchvision models."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from tests.conftest import REPO

NETS = f"{REPO}/examples/torch/nets.py"


def _cnn_spec(tmp_path, **torch_options) -> str:
    spec = {
        "parityspec": 1,
        "name": "cnn-variant",
        "data": {"synthetic": {"rows": 16, "seed": 0}},
        "model": {"task": "tensor", "inputs": [{"name": "image", "shape": [3, 16, 16]}]},
        "backends": {
            "torch": {"kind": "torch", "module": f"{NETS}:small_cnn", **torch_options},
            "onnx": {"kind": "onnx", "from": "torch"},
        },
        "profiles": {"reduced": {"extends": "lenient", "atol": 0.05, "rtol": 0.05}},
        "checks": [
            {
                "id": "out",
                "type": "output_parity",
                "between": ["torch", "onnx"],
                "profile": "reduced",
            }
        ],
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_bfloat16_module_is_compared_against_its_float32_export(invoke, tmp_path):
    result = invoke("run", _cnn_spec(tmp_path, precision="bfloat16"), "--out", tmp_path / "r")
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    figures = report["checks"][0]["figures"]
    assert result.exit_code == 0, result.output
    # bfloat16 keeps 8 bits of mantissa: the outputs differ, visibly but within the profile.
    assert 1e-4 < figures["max_abs_diff"] < 0.05
    assert report["backends"]["torch"]["facts"]["precision"] == "bfloat16"


def test_cuda_without_a_gpu_is_a_clear_input_error(invoke, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = invoke("run", _cnn_spec(tmp_path, device="cuda"), "--out", tmp_path / "r")
    assert result.exit_code == 2
    assert "CUDA is not available" in result.output


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["float32", "float16", "bfloat16"])
def test_cuda_module_matches_its_export(invoke, tmp_path, precision):
    result = invoke(
        "run", _cnn_spec(tmp_path, device="cuda", precision=precision), "--out", tmp_path / "r"
    )
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("factory", "size"), [("resnet18", 64), ("mobilenet_v3_small", 64), ("vit_b_16", 224)]
)
def test_torchvision_model_layers_match_its_export(invoke, tmp_path, factory, size):
    pytest.importorskip("torchvision")
    spec = {
        "parityspec": 1,
        "name": factory,
        "data": {"synthetic": {"rows": 4, "seed": 0}},
        "model": {"task": "tensor", "inputs": [{"name": "image", "shape": [3, size, size]}]},
        "backends": {
            "torch": {"kind": "torch", "module": f"{REPO}/examples/torch/vision.py:{factory}"},
            "onnx": {"kind": "onnx", "from": "torch"},
        },
        "checks": [
            {
                "id": "out",
                "type": "output_parity",
                "between": ["torch", "onnx"],
                "profile": "lenient",
            },
            {
                "id": "layers",
                "type": "layer_drift",
                "between": ["torch", "onnx"],
                "profile": "lenient",
            },
        ],
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = invoke("run", path, "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
