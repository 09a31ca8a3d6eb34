"""User code cannot end the run or fake a verdict; signals, deadlines and closed pipes.

A builder that calls `sys.exit(0)`, `os._exit(0)` or is killed must never give exit 0: each
is a step error (exit 3) naming the step. In-process cases go through click's runner; the
ones that end or signal the process run the real console entry point in a subprocess, where
the supervising parent (parityspec/cli_supervisor.py) is what catches them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.bad_input.helpers import (
    complete_report,
    default_spec,
    expect,
    failed_step,
    no_report,
    write_spec,
)

GOOD_AND_BAD = """
def build():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))


def bad():
    import os, signal, sys, time
{body}
"""

ENDINGS = {
    "sys-exit-0": ("sys.exit(0)", "SystemExit(0)"),
    "sys-exit-message": ("sys.exit('bye')", "SystemExit('bye')"),
    "keyboard-interrupt": ("raise KeyboardInterrupt", "KeyboardInterrupt"),
    "generator-exit": ("raise GeneratorExit('closed')", "GeneratorExit: closed"),
}


def _spec(assets: Path, folder: Path, body: str) -> dict:
    """Two pipelines: `sk` trains, `bad` runs `body`; `sk` is also checked on its own
    export, so one check must still be reported whatever `bad` does."""
    builder = folder / "builders.py"
    indented = "\n".join(f"    {line}" for line in body.splitlines())
    builder.write_text(GOOD_AND_BAD.format(body=indented))
    spec = default_spec(assets)
    spec["backends"]["sk"]["train"] = f"{builder}:build"
    spec["backends"]["bad"] = {"kind": "sklearn", "train": f"{builder}:bad"}
    spec["checks"].append(
        {"id": "bad-parity", "type": "probability_parity", "between": ["sk", "bad"]}
    )
    return spec


@pytest.mark.parametrize("ending", list(ENDINGS), ids=list(ENDINGS))
def test_user_code_that_ends_the_process_is_a_step_error(invoke, tmp_path, assets, ending):
    body, named = ENDINGS[ending]
    out = tmp_path / "out"
    result = invoke("run", write_spec(tmp_path, _spec(assets, tmp_path, body)), "--out", out)
    expect(result, 3, named, "build:bad")
    report = complete_report(out, 3)
    assert failed_step(report)["id"] == "build:bad"
    checks = {c["id"]: c["status"] for c in report["checks"]}
    assert checks == {"parity": "passed", "bad-parity": "skipped"}


def _console(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """The installed entry point, supervisor included (`python -m parityspec`)."""
    return subprocess.run(
        [sys.executable, "-m", "parityspec", *args],
        capture_output=True,
        text=True,
        timeout=240,
        env=_env(),
        **kwargs,
    )


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PARITYSPEC_STATUS_FD"}


def test_sys_exit_0_exits_3_through_the_console_script(tmp_path, assets):
    spec = write_spec(tmp_path, _spec(assets, tmp_path, "sys.exit(0)"))
    done = _console("run", str(spec), "--out", str(tmp_path / "out"))
    assert done.returncode == 3, done.stderr
    assert complete_report(tmp_path / "out", 3)["verdict"] == "error"


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        ("os._exit(0)", ("exit status 0", "during step build:bad", "without a verdict")),
        ("os._exit(1)", ("exit status 1", "during step build:bad")),
        ("os.kill(os.getpid(), signal.SIGKILL)", ("killed by SIGKILL", "during step build:bad")),
        ("os.kill(os.getpid(), signal.SIGSEGV)", ("killed by SIGSEGV", "during step build:bad")),
    ],
    ids=["os-exit-0", "os-exit-1", "sigkill", "sigsegv"],
)
def test_a_process_ended_by_user_code_exits_3_naming_the_step(tmp_path, assets, body, needles):
    spec = write_spec(tmp_path, _spec(assets, tmp_path, body))
    done = _console("run", str(spec), "--out", str(tmp_path / "out"))
    assert done.returncode == 3, done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    no_report(tmp_path / "out")


def test_timeout_ends_the_running_step_and_writes_what_finished(invoke, tmp_path, assets):
    spec = write_spec(tmp_path, _spec(assets, tmp_path, "time.sleep(600)"))
    out = tmp_path / "out"
    result = invoke("run", spec, "--out", out, "--timeout", "3")
    expect(result, 3, "timed out", "--timeout 3s")
    report = complete_report(out, 3)
    assert failed_step(report)["id"] == "build:bad"
    statuses = {s["id"]: s["status"] for s in report["steps"]}
    assert statuses["build:sk"] == "ok"
    skipped = [s for s in report["steps"] if s["status"] == "skipped"]
    assert skipped and all("timed out" in s["reason"] for s in skipped)


def test_timeout_is_not_swallowed_by_user_code(invoke, tmp_path, assets):
    """The deadline fires again every second: `except BaseException` cannot outlast it."""
    body = "for _ in range(3):\n    try:\n        time.sleep(600)\n    except BaseException:\n        pass"  # noqa: E501
    spec = write_spec(tmp_path, _spec(assets, tmp_path, body))
    out = tmp_path / "out"
    expect(invoke("run", spec, "--out", out, "--timeout", "2"), 3, "timed out")
    assert failed_step(complete_report(out, 3))["id"] == "build:bad"


@pytest.mark.slow
def test_timeout_kills_a_step_that_never_returns_to_python(tmp_path, assets):
    """A step deaf to the deadline (as native code that never returns to Python is): the
    parent kills the child once the grace is over."""
    body = "signal.signal(signal.SIGALRM, signal.SIG_IGN)\ntime.sleep(600)"
    spec = _spec(assets, tmp_path, body)
    spec["backends"] = {"bad": spec["backends"].pop("bad"), **spec["backends"]}  # runs first
    path = write_spec(tmp_path, spec)
    # Time for the steps before it on a loaded machine: the deadline must find the user code
    # deaf, not fire before it ignores SIGALRM (the child then stops the step itself).
    done = _console("run", str(path), "--out", str(tmp_path / "out"), "--timeout", "10")
    assert done.returncode == 3, done.stderr
    assert "during step build:bad" in done.stderr
    assert "after --timeout expired" in done.stderr


def _started_run(
    tmp_path: Path, assets: Path, wait: str = "time.sleep(600)"
) -> tuple[subprocess.Popen, Path]:
    """A run whose builder is waiting (`wait`): the marker file says it got there."""
    marker = tmp_path / "building"
    body = f"open({str(marker)!r}, 'w').close()\n{wait}"
    spec = write_spec(tmp_path, _spec(assets, tmp_path, body))
    child = subprocess.Popen(
        [sys.executable, "-m", "parityspec", "run", str(spec), "--out", str(tmp_path / "out")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the builder never started"
        time.sleep(0.05)
    return child, marker


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["sigint", "sigterm"]
)
def test_stop_signal_exits_128_plus_signal_naming_the_step(tmp_path, assets, signum, code):
    cache = Path(os.environ["PARITYSPEC_CACHE_DIR"])
    child, _ = _started_run(tmp_path, assets)
    child.send_signal(signum)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == code, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines[-1] == f"error: interrupted during build:bad ({signal.Signals(signum).name})"
    assert "Traceback" not in stderr
    assert "Aborted" not in stderr
    no_report(tmp_path / "out")
    assert not list(cache.rglob(".staging-*")), "cache staging left behind"


def test_an_interrupted_run_leaves_the_previous_report_in_place(tmp_path, assets):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text('{"verdict": "passed"}\n')
    child, _ = _started_run(tmp_path, assets)
    child.send_signal(signal.SIGINT)
    child.communicate(timeout=60)
    assert child.returncode == 130
    assert (out / "report.json").read_text() == '{"verdict": "passed"}\n'
    assert not (out / "report.md").exists()
    assert not list(out.rglob("*.tmp")), "a half-written file was left"


def test_a_third_stop_signal_kills_a_run_whose_code_will_not_stop(tmp_path, assets):
    """User code that swallows every interrupt: the parent forwards two, kills on the third."""
    wait = "while True:\n    try:\n        time.sleep(600)\n    except BaseException:\n        pass"
    child, _ = _started_run(tmp_path, assets, wait)
    for _ in range(3):
        child.send_signal(signal.SIGINT)
        time.sleep(0.5)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 130, stderr
    assert "killed during step build:bad: it did not stop after repeated stop signals" in stderr
    no_report(tmp_path / "out")


def test_a_closed_stdout_does_not_change_the_verdict(tmp_path, assets):
    spec = write_spec(tmp_path, default_spec(assets))
    out = tmp_path / "out"
    command = (
        f"{sys.executable} -m parityspec run {spec} --out {out} | head -c 1 >/dev/null; "
        'echo "status=${PIPESTATUS[0]}"'
    )
    done = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=240, env=_env()
    )
    assert done.stdout.strip() == "status=0", done.stdout + done.stderr
    assert "BrokenPipe" not in done.stderr, done.stderr
    assert json.loads((out / "report.json").read_text())["verdict"] == "passed"
