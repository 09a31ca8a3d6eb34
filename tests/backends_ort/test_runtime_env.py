"""A declared onnxruntime release: its requirement checked at validate, its environment built
once, atomically, by one run at a time, and pip's refusal reported as exit 2."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from parityspec.backends import runtime_env
from parityspec.backends.onnx import Spec
from parityspec.backends.runtime_env import BUILDING, MARKER, environment, folder_name
from parityspec.errors import InputError

NEEDED = ("onnxruntime==1.20.1",)


@pytest.mark.parametrize(
    ("runtime", "expected"),
    [
        ({"onnxruntime": "1.20.1"}, ("onnxruntime==1.20.1",)),
        ({"onnxruntime": " ==1.20.1"}, ("onnxruntime==1.20.1",)),
        ({"onnxruntime": ">=1.20,<1.21"}, ("onnxruntime<1.21,>=1.20",)),
        ({"onnxruntime-openvino": "~=1.20.0"}, ("onnxruntime-openvino~=1.20.0",)),
        ({"onnxruntime": "1.16.3", "numpy": "<2"}, ("numpy<2", "onnxruntime==1.16.3")),
    ],
)
def test_a_runtime_becomes_pip_requirements(runtime, expected):
    spec = Spec.model_validate({"kind": "onnx", "path": "m.onnx", "runtime": runtime})
    assert spec.session_settings().runtime == expected


@pytest.mark.parametrize(
    ("runtime", "said"),
    [
        ({"onnxruntime": 1.2}, "must be a quoted string: YAML read 1.2 as a number"),
        ({"onnxruntime": "1..2"}, "'1..2' is not a version or a version specifier"),
        ({"onnxruntime": "latest"}, "'latest' is not a version"),
        ({"onnxruntime": ""}, "'' is not a version"),
        ({"onnxruntime": "1.20; os_name=='nt'"}, "is not a version"),
        ({"torch": "2.1"}, "'torch' is not a distribution runtime can name"),
        ({"OnnxRuntime": "1.20.1"}, "spelt in lower case"),
        ({"numpy": "<2"}, "name exactly one onnxruntime distribution"),
        ({"onnxruntime": "1.20.1", "onnxruntime-gpu": "1.20.1"}, "exactly one onnxruntime"),
        ({}, "name exactly one onnxruntime distribution"),
    ],
)
def test_a_malformed_runtime_is_refused_with_an_example(runtime, said):
    with pytest.raises(ValidationError, match=said):
        Spec.model_validate({"kind": "onnx", "path": "m.onnx", "runtime": runtime})


def test_validate_names_the_key_and_exits_2(invoke, tmp_path):
    spec = {
        "parityspec": 1,
        "name": "versions",
        "data": {"path": "d.csv", "target": "y"},
        "model": {"task": "binary"},
        "backends": {
            "onnx": {"kind": "onnx", "path": "m.onnx"},
            "onnx_old": {"kind": "onnx", "path": "m.onnx", "runtime": {"onnxruntime": "1.2x"}},
        },
        "checks": [{"id": "p", "type": "probability_parity", "between": ["onnx_old", "onnx"]}],
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    result = invoke("validate", tmp_path / "s.yaml")
    assert result.exit_code == 2
    assert "backends.onnx_old.runtime: '1.2x' is not a version" in result.output
    assert 'e.g. runtime: {onnxruntime: "1.20.1"}' in result.output


def test_the_folder_is_keyed_by_the_requirements():
    assert folder_name(NEEDED).startswith("onnxruntime-1.20.1-py3.")
    assert folder_name(NEEDED) != folder_name(("onnxruntime==1.20.0",))
    assert folder_name(NEEDED) == folder_name(NEEDED)


class FakeBuild:
    """The build's three commands as stand-ins: a folder with an interpreter, pip's install
    (counted, slow or failing when asked) and the import probe."""

    def __init__(self, monkeypatch, pause: float = 0.0, fail: BaseException | None = None):
        self.installs, self.pause, self.fail = 0, pause, fail
        monkeypatch.setattr(runtime_env, "_make_venv", self.make_venv)
        monkeypatch.setattr(runtime_env, "_pip_install", self.pip_install)
        monkeypatch.setattr(runtime_env, "_probe", lambda folder, needed: {"onnxruntime": "1.20.1"})

    def make_venv(self, folder: Path) -> None:
        (folder / "bin").mkdir(parents=True)
        (folder / "bin" / "python").write_text("")

    def pip_install(self, folder: Path, needed: tuple[str, ...]) -> None:
        self.installs += 1
        time.sleep(self.pause)
        if self.fail is not None:
            raise self.fail


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if not p.name.endswith(".lock"))


def test_an_environment_is_built_once_and_says_so_once(tmp_path, monkeypatch, capsys):
    build = FakeBuild(monkeypatch)
    first = environment(NEEDED, tmp_path)
    again = environment(NEEDED, tmp_path)
    assert build.installs == 1 and first == again
    assert first.versions == {"onnxruntime": "1.20.1"}
    assert first.folder == tmp_path / folder_name(NEEDED)
    assert json.loads((first.folder / MARKER).read_text())["requirements"] == list(NEEDED)
    assert capsys.readouterr().err == (
        "building an environment for onnxruntime==1.20.1 (once) ...\n"
    )
    assert _leftovers(tmp_path) == [folder_name(NEEDED)]


@pytest.mark.parametrize("stop", [KeyboardInterrupt(), InputError("pip cannot install")])
def test_a_build_cut_short_leaves_nothing_that_looks_built(tmp_path, monkeypatch, stop):
    FakeBuild(monkeypatch, fail=stop)
    with pytest.raises(type(stop)):
        environment(NEEDED, tmp_path)
    assert _leftovers(tmp_path) == []
    build = FakeBuild(monkeypatch)
    assert environment(NEEDED, tmp_path).folder.is_dir() and build.installs == 1


def test_a_killed_builds_folder_is_not_taken_for_an_environment(tmp_path, monkeypatch):
    # What a build killed by SIGKILL leaves: everything but the rename.
    name = folder_name(NEEDED)
    left = tmp_path / f"{BUILDING}{name}-99999"
    FakeBuild(monkeypatch).make_venv(left)
    (left / MARKER).write_text(json.dumps({"requirements": list(NEEDED), "versions": {}}))
    damaged = tmp_path / name  # and a final folder without its marker
    (damaged / "bin").mkdir(parents=True)
    build = FakeBuild(monkeypatch)
    env = environment(NEEDED, tmp_path)
    assert build.installs == 1 and env.folder == damaged
    assert (damaged / MARKER).is_file()
    assert _leftovers(tmp_path) == [name]


def test_concurrent_runs_build_it_once(tmp_path, monkeypatch):
    build = FakeBuild(monkeypatch, pause=0.5)
    found = []
    threads = [
        threading.Thread(target=lambda: found.append(environment(NEEDED, tmp_path)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert build.installs == 1 and len(found) == 3 and all(f == found[0] for f in found)


def test_the_cache_folder_is_tagged_or_left_alone(tmp_path):
    fresh = tmp_path / "cache"
    assert runtime_env.runtimes_root(fresh) == fresh / "runtimes"
    assert (fresh / "CACHEDIR.TAG").read_text().startswith(runtime_env.TAG_SIGNATURE)
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="holds files parityspec did not write"):
        runtime_env.runtimes_root(home)
    assert sorted(p.name for p in home.iterdir()) == ["notes.txt"]


def test_pips_reason_is_its_last_error_line():
    output = (
        "Looking in links: /opt/wheels\n"
        "ERROR: Could not find a version that satisfies the requirement onnxruntime==0.0.1 "
        "(from versions: 1.16.0, 1.20.1)\n"
        "ERROR: No matching distribution found for onnxruntime==0.0.1\n"
    )
    assert runtime_env.last_error(output) == (
        "No matching distribution found for onnxruntime==0.0.1"
    )
    assert runtime_env.last_error("Traceback ...\nImportError: numpy\n") == "ImportError: numpy"


@functools.cache
def index_reachable() -> bool:
    """Whether pip, as configured here, fetches the release the slow tests install."""
    import tempfile

    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:"]
    with tempfile.TemporaryDirectory(prefix="parityspec-pip-") as folder:
        try:
            done = subprocess.run(
                [*command, "onnxruntime==1.20.1", "-d", folder],
                capture_output=True,
                timeout=60,
                env={**os.environ, "PIP_DEFAULT_TIMEOUT": "10", "PIP_RETRIES": "0"},
            )
        except subprocess.TimeoutExpired:
            return False
    return done.returncode == 0


def test_a_release_pip_cannot_install_is_exit_2_with_pips_reason(tmp_path):
    if not index_reachable():
        pytest.skip("pip cannot reach its package index from this machine")
    with pytest.raises(InputError) as raised:
        environment(("onnxruntime==0.0.1",), tmp_path)
    message = str(raised.value)
    assert message.startswith("pip cannot install onnxruntime==0.0.1: ")
    assert "No matching distribution found for onnxruntime==0.0.1" in message
    assert "hint: name a release that has a wheel for Python 3." in message
    assert raised.value.exit_code == 2
    assert _leftovers(tmp_path) == []


class _Stop(BaseException):
    pass


def test_a_stopped_build_command_is_killed_with_its_children(tmp_path):
    """As venv's ensurepip runs pip: the grandchild must not go on writing the folder."""
    import signal

    pids = tmp_path / "pids"
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pids)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )

    def stop(_signum, _frame):
        raise _Stop

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, 1.5)
    try:
        with pytest.raises(_Stop):
            runtime_env._run_quietly([sys.executable, "-c", script], "what", "hint")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    grandchild = int(pids.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _running(grandchild):
        time.sleep(0.05)
    assert not _running(grandchild)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except OSError:
        return False
    return state != "Z"
