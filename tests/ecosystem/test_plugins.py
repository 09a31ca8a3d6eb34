"""Plugins: backends and check types from other packages, through entry points."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from importlib import metadata

import pytest

from parityspec.plugins import load_plugins
from tests.conftest import REPO
from tests.ecosystem.demo_plugin import PLUGIN, declared_entry_points, install

SPEC = """\
parityspec: 1
name: plugin-demo
data: {sklearn: breast_cancer}
model: {task: binary}
backends:
  low: {kind: constant, value: 0.30}
  high: {kind: constant, value: 0.35}
profiles:
  tight: {extends: lenient, tolerance: 0.04}
checks:
  - {id: close, type: always_close, between: [low, high]}
  - {id: close-strict, type: always_close, between: [low, high], profile: strict}
  - {id: close-tight, type: always_close, between: [low, high], profile: tight}
  - {id: close-own, type: always_close, between: [low, high], profile: tight, tolerance: 0.06}
  - {id: labels, type: label_agreement, between: [low, high]}
report: {dir: out}
"""
# The plugin's own tolerance field, `tolerance`, from each place it can come from.
EXPECTED = {
    "close": ("passed", 0.1),  # the plugin's value in the built-in default profile
    "close-strict": ("failed", 0.01),  # ... in strict
    "close-tight": ("failed", 0.04),  # a user profile sets it
    "close-own": ("passed", 0.06),  # the check sets it over its profile
}
# Runs in a fresh interpreter: the spec models build their unions from the registries at import.
SCRIPT = """\
import json, sys
from click.testing import CliRunner
from parityspec.cli import cli
results = [CliRunner().invoke(cli, args) for args in json.loads(sys.argv[1])]
print(json.dumps([[r.exit_code, r.stdout, r.stderr] for r in results]))
"""


def test_entry_points_are_loaded_by_kind_and_type(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN))
    declared = declared_entry_points()
    fake = [
        metadata.EntryPoint(name, value, group)
        for group, entries in declared.items()
        for name, value in entries.items()
    ]

    def entry_points(group):
        return [e for e in fake if e.group == group]

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    assert list(load_plugins("parityspec.backends", {})) == list(declared["parityspec.backends"])
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
    env = install(tmp_path / "site")
    spec = tmp_path / "plugin.yaml"
    spec.write_text(SPEC)
    calls = [["schema"], ["schema", "--check"], ["validate", str(spec)], ["run", str(spec)]]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(calls)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=True,
    )
    printed, committed, validated, ran = json.loads(done.stdout)
    assert printed[0] == 0 and '"always_close"' in printed[1] and '"constant"' in printed[1]
    schema = json.loads(printed[1])
    assert "tolerance" in schema["$defs"]["Profile"]["properties"]
    assert "check always_close (parityspec_demo_plugin.always_close)" in schema["description"]
    assert "includes plugin check always_close" in printed[2]
    # The committed schema is the built-ins': an installed plugin does not make it stale.
    assert committed[0] == 0, committed[2]
    assert validated[0] == 0, validated[2]
    assert ran[0] == 1, ran[1] + ran[2]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["close"]["figures"]["max_abs_diff"] == pytest.approx(0.05)
    got = {i: (checks[i]["status"], checks[i]["tolerances"]["tolerance"]) for i in EXPECTED}
    assert got == EXPECTED
    assert checks["labels"]["status"] == "passed"
    assert report["backends"]["low"]["kind"] == "constant"
