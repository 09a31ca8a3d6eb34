"""The hand-written baseline: exactly the work of benchmarks/churn_bench.yaml, no tool.

Load the model and the data, export to ONNX, quantize to INT8, predict every backend in
4096-row batches, compare with numpy. Prints the figures as JSON.
"""

import json
import sys

import numpy as np
import onnxruntime as ort
import pandas as pd
import skops.io as sio
from onnxruntime.quantization import QuantType, quantize_dynamic
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType

BATCH = 4096


def main(model_path: str, data_path: str, work_dir: str) -> None:
    model = sio.load(model_path, trusted=sio.get_untrusted_types(file=model_path))
    frame = pd.read_csv(data_path).drop(columns=["churned"])
    numeric = [c for c in frame.columns if frame[c].dtype.kind in "biuf"]
    types = [(c, FloatTensorType([None, 1]) if c in numeric else StringTensorType([None, 1]))
             for c in frame.columns]
    onnx_model = convert_sklearn(model, initial_types=types, target_opset={"": 17, "ai.onnx.ml": 3},
                                 options={id(model.steps[-1][1]): {"zipmap": False}})
    fp32, int8 = f"{work_dir}/hand.onnx", f"{work_dir}/hand.int8.onnx"
    with open(fp32, "wb") as handle:
        handle.write(onnx_model.SerializeToString())
    quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8)
    sessions = [ort.InferenceSession(p, providers=["CPUExecutionProvider"]) for p in (fp32, int8)]
    outputs = {"sklearn": [], "onnx": [], "int8": []}
    for start in range(0, len(frame), BATCH):
        batch = frame.iloc[start : start + BATCH]
        feeds = {c: (batch[c].to_numpy(np.float32) if c in numeric
                     else batch[c].astype(str).to_numpy(object)).reshape(-1, 1)
                 for c in frame.columns}
        outputs["sklearn"].append(model.predict_proba(batch))
        for name, session in zip(("onnx", "int8"), sessions, strict=True):
            outputs[name].append(session.run(None, feeds)[1])
    ref = np.concatenate(outputs["sklearn"])
    figures = {}
    for name in ("onnx", "int8"):
        diff = np.abs(ref - np.concatenate(outputs[name]))
        labels = (ref.argmax(1) == np.concatenate(outputs[name]).argmax(1)).mean()
        figures[name] = {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
                         "agreement": float(labels)}
    print(json.dumps(figures))


if __name__ == "__main__":
    main(*sys.argv[1:4])
