"""Results are whole or absent: real runs killed with SIGKILL at several points never leave a
partial `report.json`, a previous report survives a killed rerun, and the temporary files a
killed writer leaves behind never carry a final name and are removed by the next write."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from parityspec.artifacts import remove_stale_temporaries, write_bytes
from tests.conftest import REPO, SPECS

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

TEMPORARY = re.compile(r"\.(?P<final>.+)\.(?P<pid>\d+)\.[^.]+\.tmp")
FINAL_JSON = ("report.json", "parity_report.json", "onnx_features.json", "onnx_metadata.json")


def _churn_spec(folder: Path) -> Path:
    spec = yaml.safe_load((SPECS / "churn.yaml").read_text())
    spec["data"]["path"] = str(REPO / "examples" / "churn" / "churn.csv")
    spec["backends"]["sklearn"]["train"] = f"{REPO}/examples/churn/train.py:build_pipeline"
    path = folder / "churn.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _spawn(spec: Path, out: Path, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "PARITYSPEC_CACHE_DIR": str(cache)}
    return subprocess.Popen(
        [sys.executable, "-m", "parityspec", "run", str(spec), "--out", str(out), "-q"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill_after(process: subprocess.Popen, seconds: float) -> None:
    time.sleep(seconds)
    process.send_signal(signal.SIGKILL)
    process.wait()


def _kill_at_first_temporary(process: subprocess.Popen, out: Path, limit: float = 60) -> None:
    """Aim at the write itself: kill as soon as a temporary file shows up."""
    deadline = time.monotonic() + limit
    while process.poll() is None and time.monotonic() < deadline:
        if out.is_dir() and any(TEMPORARY.fullmatch(p.name) for p in out.iterdir()):
            break
        time.sleep(0.0005)
    process.send_signal(signal.SIGKILL)
    process.wait()


def _assert_whole(out: Path, full: dict, seeded: dict | None) -> None:
    report_path = out / "report.json"
    if seeded is not None:
        assert report_path.is_file(), "a killed rerun lost the previous report"
    if report_path.exists():
        report = json.loads(report_path.read_text())
        assert set(report) == set(full)
        assert [c["id"] for c in report["checks"]] == [c["id"] for c in full["checks"]]
        assert "verdict" in report and report["checks"]
    for path in out.rglob("*"):
        if path.name in FINAL_JSON:
            json.loads(path.read_text())  # whole, or this raises
        match = TEMPORARY.fullmatch(path.name)
        if path.name.endswith(".tmp"):
            assert match, f"a temporary file with an unexpected name: {path}"
            assert match["final"] != path.name


def test_killed_runs_leave_whole_reports_or_none(tmp_path, invoke):
    spec = _churn_spec(tmp_path)
    full_out = tmp_path / "full"
    started = time.monotonic()
    assert _spawn(spec, full_out, tmp_path / "cache-full").wait() == 0
    duration = time.monotonic() - started
    full_text = (full_out / "report.json").read_text()
    full = json.loads(full_text)

    cases = [(0.5, False), (1.5, True), (3.0, False), (duration * 0.9, True), (None, True)]
    for index, (delay, seed) in enumerate(cases):
        out = tmp_path / f"run{index}"
        if seed:
            out.mkdir()
            (out / "report.json").write_text(full_text)
        process = _spawn(spec, out, tmp_path / f"cache{index}")
        if delay is None:
            _kill_at_first_temporary(process, out)
        else:
            _kill_after(process, delay)
        _assert_whole(out, full, full if seed else None)
    # The next run into the last folder (killed while writing) leaves no temporary behind.
    assert invoke("run", spec, "--out", out, "-q").exit_code == 0
    assert not [p for p in out.rglob("*.tmp") if TEMPORARY.fullmatch(p.name)]


def test_the_next_write_removes_what_a_killed_writer_left(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stray = tmp_path / f".report.json.{dead.pid}.abc123_x.tmp"
    stray.write_text('{"half": ')
    live = tmp_path / f".report.json.{os.getpid()}.zzz999_y.tmp"  # a writer still at work
    live.write_text("{}")
    other = tmp_path / f".report.md.{dead.pid}.abc123_x.tmp"
    other.write_text("# half")
    write_bytes(tmp_path / "report.json", b"{}\n")
    assert not stray.exists()
    assert live.exists() and other.exists()  # only this file's leftovers, only dead writers
    assert remove_stale_temporaries(tmp_path / "report.md") == [other]


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from parityspec.artifacts import write_bytes
    target = Path(sys.argv[1])
    contents = [b"A" * (8 << 20), b"B" * (8 << 20)]
    print("ready", flush=True)
    index = 0
    while True:
        write_bytes(target, contents[index % 2])
        index += 1
    """
)


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.45])
def test_write_bytes_killed_mid_write_leaves_either_whole_version(tmp_path, delay):
    """A writer busy rewriting an 8 MiB file, killed at an arbitrary moment."""
    target = tmp_path / "report.json"
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, cwd=REPO
    )
    assert process.stdout.readline() == b"ready\n"
    _kill_after(process, delay)
    if target.exists():
        data = target.read_bytes()
        assert data in (b"A" * (8 << 20), b"B" * (8 << 20))
    leftovers = [p for p in tmp_path.iterdir() if p != target]
    assert all(TEMPORARY.fullmatch(p.name) for p in leftovers), leftovers
    write_bytes(target, b"next\n")
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
