"""Paths that are not regular files, given as the spec or as data.path: a FIFO, a character
device, a directory, a symlink loop. Each is refused at once, exit 2, naming the path.

Opening a FIFO blocks until a writer comes and reading /dev/zero never ends, so the cases
that would hang or fill memory if the check regressed run the command in a subprocess with
a timeout and a memory limit: a regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from parityspec import loading
from tests.bad_input.helpers import default_spec, expect, no_report, write_spec

KINDS = {
    "fifo": "is a FIFO (named pipe), not a regular file",
    "dev-zero": "is a character device, not a regular file",
    "dev-urandom": "is a character device, not a regular file",
    "directory": "is a directory, not a regular file",
    "symlink-loop": "is a symlink loop, not a regular file",
}
# As data, a directory is read as Parquet shards (tests/run/test_sharded_data.py): one
# without any is refused at once too.
DATA_KINDS = {**KINDS, "directory": "is a directory with no .parquet files"}
HANGS = ("fifo", "dev-zero", "dev-urandom")
"""Kinds that would block or read without end if the check regressed."""
TIMEOUT_S = 120
MEMORY_LIMIT = 4 << 30


def _special(folder: Path, kind: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "dev-zero":
        return Path("/dev/zero")
    if kind == "dev-urandom":
        return Path("/dev/urandom")
    path = folder / f"{kind}.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        (folder / "other.yaml").symlink_to(path)
        path.symlink_to(folder / "other.yaml")
    return path


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _cli(*args) -> subprocess.CompletedProcess:
    """`parityspec ARGS` in a child that cannot hang the suite or take the machine's memory."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "parityspec", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            preexec_fn=_limit_memory,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"parityspec {' '.join(map(str, args))} did not answer in {TIMEOUT_S} s")


def _expect_child(result: subprocess.CompletedProcess, *needles: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    for needle in needles:
        assert needle in output, f"{needle!r} not in:\n{output}"


def test_validate_refuses_every_special_spec_path(tmp_path):
    """One child for all kinds: `validate` takes several specs and reports each."""
    paths = {kind: _special(tmp_path, kind) for kind in KINDS}
    result = _cli("validate", *paths.values())
    _expect_child(result, f"0 of {len(KINDS)} spec(s) valid")
    lines = result.stderr.splitlines()
    for kind, path in paths.items():
        assert f"{path}: {KINDS[kind]} (hint: give the path of a spec file)" in lines, kind


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_run_refuses_a_special_spec_path(invoke, tmp_path, kind):
    path = _special(tmp_path, kind)
    out = tmp_path / "out"
    if kind in HANGS:
        _expect_child(_cli("run", path, "--out", out), str(path), KINDS[kind])
    else:
        expect(invoke("run", path, "--out", out), 2, str(path), KINDS[kind])
    assert not out.exists()


def _data_spec(tmp_path: Path, assets: Path, kind: str) -> Path:
    spec = default_spec(assets)
    spec["data"]["path"] = str(_special(tmp_path / "data", kind))
    return write_spec(tmp_path / kind, spec)


def test_validate_refuses_every_special_data_path(tmp_path, assets):
    specs = {kind: _data_spec(tmp_path, assets, kind) for kind in KINDS}
    result = _cli("validate", *specs.values())
    _expect_child(result, f"0 of {len(KINDS)} spec(s) valid")
    for kind, spec in specs.items():
        line = next(line for line in result.stderr.splitlines() if line.startswith(f"{spec}:"))
        assert "data.path: " in line and DATA_KINDS[kind] in line, line


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_run_refuses_a_special_data_path(invoke, tmp_path, assets, kind):
    spec = _data_spec(tmp_path, assets, kind)
    out = tmp_path / "out"
    if kind in HANGS:
        _expect_child(_cli("run", spec, "--out", out), "data.path", DATA_KINDS[kind])
    else:
        expect(invoke("run", spec, "--out", out), 2, "data.path", DATA_KINDS[kind])
    no_report(out)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_the_data_loader_itself_refuses_special_files(tmp_path, kind):
    """Behind the spec's own check (which a file replaced later would slip past): the data
    loader asks stat before opening anything."""
    from parityspec.data.sources import load_dataset
    from parityspec.errors import InputError
    from parityspec.spec.models import DataSpec, ModelSpec

    path = _special(tmp_path, kind)
    with pytest.raises(InputError, match="not a regular file"):
        load_dataset(DataSpec(path=str(path), target="t"), ModelSpec(task="binary"), tmp_path)


def test_reads_are_bounded_by_bytes_read_not_by_the_reported_size(tmp_path):
    """/proc files report 0 bytes and hold text; a sparse file reports far more than is
    read of it."""
    status = Path("/proc/self/status")
    if not status.is_file() or status.stat().st_size:
        pytest.skip("needs Linux /proc, whose files report a size of 0")
    assert len(loading.read_regular_file(status, 10)) == 11
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as stream:
        stream.truncate(100 << 30)
    assert len(loading.read_regular_file(huge, 1000)) == 1001


def test_a_spec_far_larger_than_the_limit_is_refused_after_reading_only_the_limit(
    invoke, tmp_path, monkeypatch
):
    from parityspec.spec import yaml_source

    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as stream:
        stream.truncate(100 << 30)
    read = []
    original = loading.read_regular_file

    def counting(path, limit):
        data = original(path, limit)
        read.append(len(data))
        return data

    monkeypatch.setattr(yaml_source, "read_regular_file", counting)
    result = invoke("validate", huge)
    expect(result, 2, "huge.yaml: spec file too large")
    assert read == [yaml_source.MAX_BYTES + 1]
