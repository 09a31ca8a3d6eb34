"""The frames between parityspec and an ONNX Runtime subprocess, and the subprocess's life:
served by this interpreter's own onnxruntime (an environment that needs no build)."""

from __future__ import annotations

import io
import os
import signal
import stat
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from parityspec.backends import ort_remote, ort_worker
from parityspec.backends.ort_remote import RemoteSession
from parityspec.backends.runtime_env import Environment
from parityspec.errors import InputError, StepError

SETTINGS = {
    "graph_optimization_level": "all",
    "intra_op_threads": 1,
    "providers": ["CPUExecutionProvider"],
}


def _framed(header: dict, arrays: list[np.ndarray]) -> io.BytesIO:
    stream = io.BytesIO()
    ort_worker.write_message(stream, header, arrays)
    stream.seek(0)
    return stream


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.array([[1.5], [np.nan]], dtype=np.float64),
        np.array([3, -1], dtype=np.int64),
        np.array([True, False]),
        np.zeros((0, 5), dtype=np.float16),
        np.array([["month-to-month"], ["two-year"]], dtype=object),
    ],
)
def test_arrays_cross_the_frames_unchanged(array):
    header, (back,) = ort_worker.read_message(_framed({"op": "run"}, [array]))
    assert header == {"op": "run", "arrays": 1}
    expected = array.astype(str) if array.dtype == object else array
    np.testing.assert_array_equal(back, expected)
    assert back.dtype == expected.dtype and back.shape == array.shape


def test_the_end_of_the_stream_between_messages_is_no_message():
    stream = _framed({"op": "hello"}, [])
    assert ort_worker.read_message(stream) == ({"op": "hello", "arrays": 0}, [])
    assert ort_worker.read_message(stream) is None


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (b"\x05\x00", "inside a frame's length"),
        (b"\xff" * 8, "a frame of"),
        (ort_worker.LENGTH.pack(10) + b"{}", "short of a frame"),
        (ort_worker.LENGTH.pack(3) + b"abc", "not parityspec's JSON"),
        (
            ort_worker.LENGTH.pack(13) + b'{"arrays": 1}' + ort_worker.LENGTH.pack(3) + b"abc",
            "numpy",
        ),
        (ort_worker.LENGTH.pack(14) + b'{"arrays": -1}', "announcing -1"),
    ],
)
def test_a_malformed_stream_is_named_as_such(raw, said):
    with pytest.raises(ort_worker.Malformed, match=said):
        ort_worker.read_message(io.BytesIO(raw))


def test_no_pickle_crosses():
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    frame = buffer.getvalue()
    stream = io.BytesIO(
        ort_worker.LENGTH.pack(13) + b'{"arrays": 1}' + ort_worker.LENGTH.pack(len(frame)) + frame
    )
    with pytest.raises(ort_worker.Malformed, match="numpy cannot read"):
        ort_worker.read_message(stream)


@pytest.fixture(scope="module")
def here() -> Environment:
    """This interpreter's environment, as a built one is described."""
    return Environment(Path(sys.prefix), ("onnxruntime",), {"onnxruntime": ort.__version__})


@pytest.fixture(scope="module")
def graph(tmp_path_factory) -> Path:
    """y = 2x, and a string passed through."""
    nodes = [
        helper.make_node("Mul", ["x", "two"], ["y"]),
        helper.make_node("Identity", ["s"], ["t"]),
    ]
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    model = helper.make_model(
        helper.make_graph(
            nodes,
            "g",
            [
                helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3]),
                helper.make_tensor_value_info("s", TensorProto.STRING, ["n", 1]),
            ],
            [
                helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3]),
                helper.make_tensor_value_info("t", TensorProto.STRING, ["n", 1]),
            ],
            [two],
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    path = tmp_path_factory.mktemp("graph") / "g.onnx"
    onnx.save(model, path)
    return path


def _feeds() -> dict[str, np.ndarray]:
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    return {"x": x, "s": np.array([["a"], ["bé"]], dtype=object)}


def test_a_remote_session_answers_as_an_inference_session(here, graph):
    session = RemoteSession(here, "old")
    try:
        assert session.version == ort.__version__
        assert "CPUExecutionProvider" in session.available
        assert session.open(graph, SETTINGS)["ok"]
        local = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
        assert [(i.name, i.type, list(i.shape)) for i in session.get_inputs()] == [
            (i.name, i.type, list(i.shape)) for i in local.get_inputs()
        ]
        assert session.get_providers() == ["CPUExecutionProvider"]
        remote, expected = session.run(None, _feeds()), local.run(None, _feeds())
        np.testing.assert_array_equal(remote[0], expected[0])
        assert remote[1].dtype == object and remote[1].tolist() == expected[1].tolist()
    finally:
        session.close()


def test_a_zipmap_comes_back_as_onnxruntime_returns_it(here, tmp_path):
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x = np.array([[0.0], [1.0], [2.0], [3.0]], dtype=np.float32)
    model = to_onnx(LogisticRegression().fit(x, ["a", "b", "a", "b"]), x[:1])
    path = tmp_path / "lr.onnx"
    path.write_bytes(model.SerializeToString())
    session = RemoteSession(here, "lr")
    try:
        assert session.open(path, SETTINGS)["ok"]
        labels, maps = session.run(None, {"X": x})
        expected = ort.InferenceSession(str(path)).run(None, {"X": x})
        assert labels.tolist() == expected[0].tolist()
        assert list(maps[0]) == list(expected[1][0]) == ["a", "b"]
        assert [list(m.values()) for m in maps] == [list(m.values()) for m in expected[1]]
    finally:
        session.close()


def test_a_model_the_runtime_cannot_open_is_its_reply_not_a_crash(here, tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    session = RemoteSession(here, "old")
    try:
        reply = session.open(tmp_path / "bad.onnx", SETTINGS)
        assert not reply["ok"] and reply["error"]
    finally:
        session.close()


def test_a_worker_killed_mid_run_is_a_step_error_naming_the_backend(here, graph):
    session = RemoteSession(here, "onnx_old")
    assert session.open(graph, SETTINGS)["ok"]
    process = session._process
    assert process is not None
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with pytest.raises(StepError, match=r"backend 'onnx_old': onnxruntime .* killed by signal 9"):
        session.run(None, _feeds())
    with pytest.raises(StepError, match="stopped by an earlier failure"):
        session.run(None, _feeds())


def _fake_environment(folder: Path, script: str) -> Environment:
    python = folder / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\n{script}\n")
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return Environment(folder, ("onnxruntime==1.20.1",), {"onnxruntime": "1.20.1"})


def test_a_worker_that_dies_at_once_gives_its_last_words(tmp_path):
    env = _fake_environment(tmp_path, "echo 'ImportError: no onnxruntime' >&2; exit 7")
    with pytest.raises(StepError, match=r"'old'.* ended \(exit code 7\).*ImportError: no onnx"):
        RemoteSession(env, "old")


def test_malformed_output_is_a_step_error_and_the_worker_is_stopped(tmp_path, monkeypatch):
    started = []
    real_popen = ort_remote.subprocess.Popen

    def popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(ort_remote.subprocess, "Popen", popen)
    env = _fake_environment(tmp_path, "printf 'garbage, garbage'; sleep 60")
    with pytest.raises(StepError, match=r"'old'.*sent malformed output \(a frame of \d+ bytes"):
        RemoteSession(env, "old")
    assert started[0].poll() is not None  # killed, not left sleeping


def test_an_interrupted_call_stops_the_worker(here, graph, monkeypatch):
    session = RemoteSession(here, "old")
    assert session.open(graph, SETTINGS)["ok"]
    process = session._process
    assert process is not None

    def interrupted(stream):
        raise KeyboardInterrupt

    monkeypatch.setattr(ort_worker, "read_message", interrupted)
    with pytest.raises(KeyboardInterrupt):
        session.run(None, _feeds())
    assert process.poll() is not None


def test_closing_ends_the_worker_and_so_does_collection(here):
    session = RemoteSession(here, "old")
    process = session._process
    assert process is not None
    session.close()
    assert process.poll() is not None
    again = RemoteSession(here, "old")
    process = again._process
    assert process is not None
    del again  # no reference left: the finalizer stops it
    assert process.poll() is not None


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="reads /proc")
def test_the_worker_ends_when_parityspec_is_killed(tmp_path):
    """No orphan: the process that started it dies without a word (SIGKILL)."""
    import subprocess
    import time

    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from parityspec.backends.ort_remote import RemoteSession\n"
        "from parityspec.backends.runtime_env import Environment\n"
        "session = RemoteSession(Environment(Path(sys.prefix), ('onnxruntime',), {}), 'old')\n"
        "print(session._process.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    worker = int(done.stdout.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{worker}").exists():
        time.sleep(0.1)
    assert not Path(f"/proc/{worker}").exists() or "Z" in _state(worker)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except OSError:
        return "Z"


@pytest.fixture
def as_built(monkeypatch, here):
    """`environment` finds this interpreter's, as it finds one built before."""
    from parityspec.backends import runtime_env

    monkeypatch.setattr(runtime_env, "environment", lambda needed, root: here)


def test_open_session_with_a_runtime_opens_it_in_the_subprocess(as_built, graph):
    from parityspec.backends.onnx import SessionSettings, open_session, runtime_facts

    settings = SessionSettings(runtime=("onnxruntime==1.20.1",))
    session = open_session(graph, settings, backend="onnx_old")
    try:
        assert isinstance(session, RemoteSession)
        assert runtime_facts(session) == {
            "onnxruntime": ort.__version__,
            "requirement": "onnxruntime",
        }
        local = open_session(graph)
        assert runtime_facts(local) == {"onnxruntime": ort.__version__}
        np.testing.assert_array_equal(session.run(None, _feeds())[0], local.run(None, _feeds())[0])
    finally:
        session.close()


def test_a_model_the_release_cannot_load_is_exit_2_naming_it(as_built, tmp_path, monkeypatch):
    from parityspec.backends.onnx import SessionSettings, open_session

    stopped = []
    monkeypatch.setattr(RemoteSession, "close", lambda self: stopped.append(self))
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    settings = SessionSettings(runtime=("onnxruntime==1.20.1",))
    with pytest.raises(
        InputError, match=r"onnxruntime .* \(onnxruntime==1.20.1\) cannot load"
    ) as raised:
        open_session(tmp_path / "bad.onnx", settings, backend="onnx_old")
    assert raised.value.exit_code == 2 and "export with a lower opset" in str(raised.value)
    assert len(stopped) == 1


def test_a_provider_the_release_lacks_is_exit_2_naming_what_brings_it(as_built, graph):
    from parityspec.backends.onnx import SessionSettings, open_session

    settings = SessionSettings(
        providers=("CUDAExecutionProvider",), runtime=("onnxruntime==1.20.1",)
    )
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(
        InputError, match=r"CUDAExecutionProvider is not in onnxruntime==1\.20\.1"
    ) as raised:
        open_session(graph, settings, backend="onnx_old")
    assert "comes with onnxruntime-gpu" in str(raised.value)


def test_another_runtimes_environment_lives_under_the_runs_cache_dir(tmp_path, monkeypatch):
    """`--cache-dir` keeps runtime environments apart too: the run's cache folder reaches the
    session opener."""
    import yaml

    from parityspec.api import RunOptions, run
    from parityspec.backends import onnx as onnx_backend

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "same",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.onnx"
    )
    spec = {
        "parityspec": 1,
        "name": "where",
        "data": {"synthetic": {"rows": 4}},
        "model": {"task": "tensor", "inputs": [{"name": "x", "shape": [2]}]},
        "backends": {
            "here": {"kind": "onnx", "path": "m.onnx"},
            "there": {"kind": "onnx", "path": "m.onnx", "runtime": {"onnxruntime": "1.20.1"}},
        },
        "checks": [{"id": "same", "type": "output_parity", "between": ["here", "there"]}],
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    seen = []

    def remote(path, settings, made_here, cache_dir, backend):
        seen.append(cache_dir)
        raise InputError("stopped here: the test needs only the folder")

    monkeypatch.setattr(onnx_backend, "_remote_session", remote)
    run(str(tmp_path / "spec.yaml"), RunOptions(out=tmp_path / "out", cache_dir=tmp_path / "c"))
    assert seen and all(Path(c) == tmp_path / "c" for c in seen)
