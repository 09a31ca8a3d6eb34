"""The per-layer baseline: one dynamo export of a net, one forward per side, nothing more.

    python benchmarks/layer_baseline.py FILE.py:FUNCTION SHAPE ROWS OUT.onnx
    python benchmarks/layer_baseline.py examples/torch/nets.py:small_cnn 3,16,16 256 /tmp/m.onnx

Exports as parityspec's torch backend does (dynamo, opset 18, axis 0 dynamic, weights inside
the file), runs the module on ROWS seeded normal rows of SHAPE with torch and the export with
ONNX Runtime, and prints one JSON line: seconds of each phase and the max |difference|.
"""

import importlib.util
import json
import sys
import time

import numpy as np
import onnxruntime as ort
import torch


def build(reference: str) -> torch.nn.Module:
    path, _, function = reference.rpartition(":")
    spec = importlib.util.spec_from_file_location("layer_net", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, function)()


def main(reference: str, shape: str, rows: str, onnx_path: str) -> None:
    seconds = {}
    clock = time.perf_counter()
    model = build(reference)
    dims = tuple(int(d) for d in shape.split(","))
    data = np.random.default_rng(0).standard_normal((int(rows), *dims), dtype=np.float32)
    inputs = torch.from_numpy(data)
    torch.onnx.export(
        model,
        (inputs[:2],),
        onnx_path,
        dynamo=True,
        opset_version=18,
        input_names=["x"],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        external_data=False,
        verbose=False,
    )
    seconds["export"] = time.perf_counter() - clock
    clock = time.perf_counter()
    with torch.inference_mode():
        expected = model(inputs).numpy()
    seconds["torch"] = time.perf_counter() - clock
    clock = time.perf_counter()
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": data})[0]
    seconds["onnx"] = time.perf_counter() - clock
    print(json.dumps({"seconds": seconds, "max_abs_diff": float(np.abs(expected - got).max())}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
