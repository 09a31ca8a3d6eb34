"""An ONNX Runtime session served over stdin and stdout, in another environment's interpreter.

parityspec runs this file with the interpreter of an environment it built for a declared
runtime (`runtime_env`); the client side is `ort_remote`, which imports the framing below. It
imports only the standard library, numpy and (when serving) onnxruntime, so it runs under
any onnxruntime release.

A message is a JSON header frame, then the array frames its `arrays` count announces. A
frame is 8 bytes (little-endian length), then that many bytes. An array frame is `np.save`'s
bytes without pickle; text travels as fixed-width unicode, as numpy writes it.
"""

from __future__ import annotations

import io
import json
import os
import struct
import sys
import threading
import time
from typing import IO, Any

import numpy as np

LENGTH = struct.Struct("<Q")
MAX_HEADER = 1 << 24
MAX_FRAME = 1 << 40  # far above any batch; a garbled length is beyond it
LEVELS = {
    "disabled": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


class Malformed(Exception):
    """The stream does not follow the framing: the other side is not (or no longer) ours."""


def write_message(stream: IO[bytes], header: dict[str, Any], arrays: list[np.ndarray]) -> None:
    frames = [json.dumps({**header, "arrays": len(arrays)}).encode()]
    frames += [encode_array(a) for a in arrays]
    for frame in frames:
        stream.write(LENGTH.pack(len(frame)))
        stream.write(frame)
    stream.flush()


def read_message(stream: IO[bytes]) -> tuple[dict[str, Any], list[np.ndarray]] | None:
    """The next message; None at the end of the stream, between messages."""
    raw = _read_frame(stream, MAX_HEADER, at_start=True)
    if raw is None:
        return None
    try:
        header = json.loads(raw)
        count = header["arrays"]
    except (ValueError, TypeError, KeyError) as error:
        raise Malformed(f"a header that is not parityspec's JSON ({error})") from None
    if not isinstance(count, int) or count < 0:
        raise Malformed(f"a header announcing {count!r} arrays")
    arrays = [decode_array(_read_frame(stream, MAX_FRAME) or b"") for _ in range(count)]
    return header, arrays


def encode_array(array: np.ndarray) -> bytes:
    if array.dtype == object:  # ONNX strings: np.save pickles object arrays
        array = array.astype(str)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def decode_array(frame: bytes) -> np.ndarray:
    try:
        return np.load(io.BytesIO(frame), allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise Malformed(f"an array frame numpy cannot read ({error})") from None


def _read_frame(stream: IO[bytes], limit: int, at_start: bool = False) -> bytes | None:
    prefix = _read_exactly(stream, LENGTH.size)
    if not prefix and at_start:
        return None
    if len(prefix) < LENGTH.size:
        raise Malformed("the stream ended inside a frame's length")
    (size,) = LENGTH.unpack(prefix)
    if size > limit:
        raise Malformed(f"a frame of {size} bytes (at most {limit})")
    body = _read_exactly(stream, size)
    if len(body) < size:
        raise Malformed(f"the stream ended {size - len(body)} bytes short of a frame")
    return body


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class _Server:
    """One session, opened by `open`, run by `run`; `hello` says what the runtime is."""

    def __init__(self) -> None:
        import onnxruntime

        self.ort = onnxruntime
        self.session: Any = None

    def handle(self, header: dict[str, Any], arrays: list[np.ndarray]) -> tuple[dict, list]:
        op = header.get("op")
        if op == "hello":
            return self.hello(), []
        if op == "open":
            return self.open(header), []
        if op == "run" and self.session is not None:
            return self.run(header["inputs"], arrays)
        raise ValueError(f"unknown or early request {op!r}")

    def hello(self) -> dict[str, Any]:
        versions = {"onnxruntime": self.ort.__version__, "numpy": np.__version__}
        return {"versions": versions, "available": self.ort.get_available_providers()}

    def open(self, header: dict[str, Any]) -> dict[str, Any]:
        options = self.ort.SessionOptions()
        options.intra_op_num_threads = header["intra_op_threads"]
        level = LEVELS[header["graph_optimization_level"]]
        options.graph_optimization_level = getattr(self.ort.GraphOptimizationLevel, level)
        options.log_severity_level = 3
        self.session = self.ort.InferenceSession(
            header["path"], options, providers=header["providers"]
        )
        return {
            "inputs": [_described(i) for i in self.session.get_inputs()],
            "outputs": [_described(o) for o in self.session.get_outputs()],
            "providers": self.session.get_providers(),
        }

    def run(self, names: list[str], arrays: list[np.ndarray]) -> tuple[dict, list]:
        pairs = zip(names, arrays, strict=True)
        feeds = {n: a.astype(object) if a.dtype.kind == "U" else a for n, a in pairs}
        kinds, frames = [], []
        for output in self.session.run(None, feeds):
            if isinstance(output, list) and output and isinstance(output[0], dict):
                keys = list(output[0])  # a ZipMap: its keys, then one row of values per map
                kinds.append("map")
                frames += [np.array(keys), np.array([[r[k] for k in keys] for r in output])]
            elif isinstance(output, list | dict):
                raise TypeError(f"an output of type {type(output).__name__} (not a tensor)")
            else:
                kinds.append("array")
                frames.append(np.asarray(output))
        return {"outputs": kinds}, frames


def _described(value: Any) -> dict[str, Any]:
    return {"name": value.name, "type": value.type, "shape": list(value.shape)}


def _watch_parent() -> None:
    """Ends this process when the one that started it is gone (killed mid-batch)."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def serve() -> None:
    # The frames own the real stdout; whatever native code prints goes to stderr instead.
    reader = os.fdopen(os.dup(0), "rb")
    writer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    threading.Thread(target=_watch_parent, daemon=True).start()
    server = _Server()
    while (message := read_message(reader)) is not None:
        try:
            reply, arrays = server.handle(*message)
            write_message(writer, {"ok": True, **reply}, arrays)
        except Exception as error:
            text = (str(error).strip() or type(error).__name__).splitlines()[0]
            write_message(writer, {"ok": False, "error": text, "type": type(error).__name__}, [])


if __name__ == "__main__":
    serve()
