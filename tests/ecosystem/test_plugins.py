"""Plugins: backends and check types from other packages, through entry points."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tomllib
from importlib import metadata

import pytest

from parityspec.plugins import load_plugins
from tests.conftest import REPO

PLUGIN = REPO / "tests" / "plugin_pkg"
SPEC = """\
parityspec: 1
name: plugin-demo
data: {sklearn: breast_cancer}
model: {task: binary}
backends:
  low: {kind: constant, value: 0.30}
  high: {kind: constant, value: 0.35}
checks:
  - {id: close, type: always_close, between: [low, high], tolerance: 0.1}
  - {id: labels, type: label_agreement, between: [low, high]}
report: {dir: out}
"""
# Runs in a fresh interpreter: the spec models build their unions from the registries at import.
SCRIPT = """\
import json, sys
from click.testing import CliRunner
from parityspec.cli import cli
results = [CliRunner().invoke(cli, args) for args in json.loads(sys.argv[1])]
print(json.dumps([[r.exit_code, r.output] for r in results]))
"""


def _entry_points() -> dict[str, dict[str, str]]:
    """The plugin package's own declaration, from its pyproject.toml."""
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    return project["entry-points"]


def test_entry_points_are_loaded_by_kind_and_type(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN))
    declared = _entry_points()
    fake = [
        metadata.EntryPoint(name, value, group)
        for group, entries in declared.items()
        for name, value in entries.items()
    ]

    def entry_points(group):
        return [e for e in fake if e.group == group]

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    assert list(load_plugins("parityspec.backends", {})) == ["constant"]
    assert list(load_plugins("parityspec.checks", {})) == ["always_close"]
    assert load_plugins("parityspec.checks", {"always_close": object()}) == {}  # built-ins win


def test_broken_plugins_are_skipped_with_a_warning(monkeypatch, caplog):
    broken = [
        metadata.EntryPoint("missing", "no_such_module_xyz", "parityspec.checks"),
        metadata.EntryPoint("not_a_check", "json", "parityspec.checks"),
    ]
    monkeypatch.setattr(metadata, "entry_points", lambda group: broken)
    with caplog.at_level(logging.WARNING, logger="parityspec.plugins"):
        assert load_plugins("parityspec.checks", {}) == {}
    assert "cannot be imported" in caplog.text and "lacks Spec, TASKS" in caplog.text


def test_installed_plugin_extends_schema_validation_and_runs(tmp_path):
    """A real entry-point discovery without pip: a dist-info folder on sys.path."""
    dist = tmp_path / "site" / "parityspec_demo_plugin-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: parityspec-demo-plugin\n")
    sections = [
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items())
        for group, entries in _entry_points().items()
    ]
    (dist / "entry_points.txt").write_text("\n".join(sections))
    spec = tmp_path / "plugin.yaml"
    spec.write_text(SPEC)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(PLUGIN)])}
    calls = [["schema"], ["validate", str(spec)], ["run", str(spec)]]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(calls)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=True,
    )
    (schema_code, schema), (valid_code, _), (run_code, run_output) = json.loads(done.stdout)
    assert schema_code == 0 and '"always_close"' in schema and '"constant"' in schema
    assert valid_code == 0
    assert run_code == 0, run_output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["close"]["figures"]["max_abs_diff"] == pytest.approx(0.05)
    assert report["backends"]["low"]["kind"] == "constant"
