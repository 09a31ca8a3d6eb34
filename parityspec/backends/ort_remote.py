"""An ONNX Runtime session in a subprocess: the interpreter of a runtime environment
(`runtime_env`) running `ort_worker`, fed each batch's arrays and sending the outputs back.

`RemoteSession` has the part of `InferenceSession` an `OnnxRunner` uses (`get_inputs`,
`get_outputs`, `get_providers`, `run`), so everything above it is the same as in process.
The subprocess dies with its session: on `close`, when the session is collected, at exit,
when a call is interrupted (Ctrl-C, --timeout) and when its stdin closes (this process gone).
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from parityspec.backends import ort_worker
from parityspec.backends.runtime_env import Environment
from parityspec.errors import StepError

WORKER = Path(ort_worker.__file__)
STOP_WAIT_S = 5.0


@dataclass(frozen=True)
class Described:
    """An input or output as ONNX Runtime's NodeArg describes it."""

    name: str
    type: str
    shape: list


class RemoteSession:
    def __init__(self, env: Environment, backend: str) -> None:
        self.env, self.backend = env, backend
        self.version = env.versions.get("onnxruntime", "?")
        self._lock = threading.Lock()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the finalizer)
        self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
            [str(env.python), "-I", str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,  # a terminal's Ctrl-C reaches this process, which stops it
        )
        self._finalizer = weakref.finalize(self, _stop, self._process, self._stderr)
        hello = self.call({"op": "hello"})
        self.version = hello["versions"]["onnxruntime"]
        self.available: list[str] = hello["available"]
        self._inputs: list[Described] = []
        self._outputs: list[Described] = []
        self._providers: list[str] = []

    def open(self, path: Path, settings: dict[str, Any]) -> dict[str, Any]:
        """Opens the session; the worker's error reply, if any, as {"error": ...}."""
        reply = self.call({"op": "open", "path": str(path), **settings}, check=False)
        if reply.get("ok"):
            self._inputs = [Described(**i) for i in reply["inputs"]]
            self._outputs = [Described(**o) for o in reply["outputs"]]
            self._providers = list(reply["providers"])
        return reply

    def get_inputs(self) -> list[Described]:
        return self._inputs

    def get_outputs(self) -> list[Described]:
        return self._outputs

    def get_providers(self) -> list[str]:
        return self._providers

    def run(self, names: list[str] | None, feeds: dict[str, np.ndarray]) -> list[Any]:
        if names is not None:
            raise ValueError("a remote session runs every output (names=None)")
        reply, arrays = self._exchange({"op": "run", "inputs": list(feeds)}, list(feeds.values()))
        if not reply.get("ok"):
            error = f"{reply.get('type')}: {reply.get('error')}"
            raise StepError(f"{self._who()} failed on a batch: {error}")
        return self._outputs_of(reply, arrays)

    def call(self, header: dict[str, Any], check: bool = True) -> dict[str, Any]:
        reply, _ = self._exchange(header, [])
        if check and not reply.get("ok"):
            raise StepError(f"{self._who()}: {reply.get('error')}")
        return reply

    def close(self) -> None:
        self._finalizer()

    def _exchange(
        self, header: dict[str, Any], arrays: list[np.ndarray]
    ) -> tuple[dict[str, Any], list[np.ndarray]]:
        with self._lock:
            process = self._process
            if process is None or process.stdin is None or process.stdout is None:
                raise StepError(f"{self._who()} was stopped by an earlier failure")
            try:
                ort_worker.write_message(process.stdin, header, arrays)
                message = ort_worker.read_message(process.stdout)
            except (BrokenPipeError, ort_worker.Malformed) as error:
                raise self._failed(process, error) from None
            except BaseException:  # Ctrl-C, --timeout: where the stream stands is unknown
                self._end()
                raise
            if message is None:
                raise self._failed(process, None)
            return message

    def _outputs_of(self, reply: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
        kinds, at = reply.get("outputs"), 0
        outputs: list[Any] = []
        if not isinstance(kinds, list) or len(kinds) != len(self._outputs):
            raise self._failed(self._process, ort_worker.Malformed(f"outputs {kinds!r}"))
        for kind in kinds:
            if kind == "map" and at + 2 <= len(arrays):  # a ZipMap, rebuilt as ORT returns it
                keys, values = arrays[at].tolist(), arrays[at + 1]
                outputs.append([dict(zip(keys, row, strict=True)) for row in values.tolist()])
                at += 2
            elif kind == "array" and at < len(arrays):
                output = arrays[at]
                outputs.append(output.astype(object) if output.dtype.kind == "U" else output)
                at += 1
            else:
                raise self._failed(self._process, ort_worker.Malformed(f"output kind {kind!r}"))
        return outputs

    def _failed(
        self, process: subprocess.Popen[bytes] | None, error: Exception | None
    ) -> StepError:
        """The subprocess died or broke the protocol: it is stopped, and this says how."""
        self._end()
        code = process.returncode if process is not None else None
        if error is not None and not isinstance(error, BrokenPipeError):
            how = f"sent malformed output ({error})"
        elif code is not None and code < 0:
            how = f"was killed by signal {-code}"
        else:
            how = f"ended (exit code {code})"
        said = _last_line(self._stderr)
        return StepError(f"{self._who()} {how}" + (f"; its last words: {said}" if said else ""))

    def _end(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()  # mid-batch: its result is of no use
            _stop(process, None)

    def _who(self) -> str:
        return (
            f"backend {self.backend!r}: onnxruntime {self.version} "
            f"({', '.join(self.env.requirements)}, in its own environment)"
        )


def _stop(process: subprocess.Popen[bytes], stderr: IO[bytes] | None) -> None:
    """Closes the worker's stdin (it then ends by itself), and kills it if it does not."""
    try:
        if process.stdin is not None:
            process.stdin.close()
    except OSError:
        pass
    try:
        process.wait(STOP_WAIT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()
    if stderr is not None:
        stderr.close()


def _last_line(stderr: IO[bytes]) -> str:
    try:
        stderr.seek(0)
        lines = [
            line.strip() for line in stderr.read()[-8192:].decode("utf-8", "replace").splitlines()
        ]
    except (OSError, ValueError):
        return ""
    return next((line for line in reversed(lines) if line), "")
