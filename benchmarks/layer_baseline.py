"""The per-layer baseline: one dynamo export of the CNN, one forward per side, nothing more."""

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "torch"))
from nets import small_cnn


def main(onnx_path: str) -> None:
    model = small_cnn()
    images = torch.from_numpy(np.random.default_rng(0).standard_normal((64, 3, 16, 16),
                                                                          dtype=np.float32))
    torch.onnx.export(model, (images[:2],), onnx_path, dynamo=True, opset_version=18,
                      input_names=["image"], dynamic_shapes=({0: torch.export.Dim("batch")},))
    with torch.inference_mode():
        expected = model(images).numpy()
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": images.numpy()})[0]
    print(float(np.abs(expected - got).max()))


if __name__ == "__main__":
    main(sys.argv[1])
