"""A report format from another package: the demo plugin's `csv` (one row per check with its
headline figure), registered through the entry-point group `parityspec.formats` alone."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from importlib import metadata

from parityspec.plugins import load_plugins
from parityspec.report.formats import BUILTIN
from parityspec.report.formats.base import ReportFormat
from tests.conftest import REPO
from tests.ecosystem.demo_plugin import PLUGIN, declared_entry_points, install

SPEC = """\
parityspec: 1
name: format-plugin
data: {sklearn: breast_cancer}
model: {task: binary}
backends:
  low: {kind: constant, value: 0.30}
  high: {kind: constant, value: 0.45}
checks:
  - {id: close, type: always_close, between: [low, high], tolerance: 0.1}
  - {id: far, type: always_close, between: [low, high], tolerance: 0.05}
  - {id: labels, type: label_agreement, between: [low, high]}
report: {dir: out, formats: [json, csv]}
"""
# A fresh interpreter: the registries, and the spec models built from them, load at import.
SCRIPT = """\
import json, sys
from click.testing import CliRunner
from parityspec.cli import cli
results = [CliRunner().invoke(cli, args) for args in json.loads(sys.argv[1])]
print(json.dumps([[r.exit_code, r.stdout] for r in results]))
"""


def test_the_format_is_found_through_its_entry_point(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN))
    group = "parityspec.formats"
    fake = [metadata.EntryPoint(k, v, group) for k, v in declared_entry_points()[group].items()]
    monkeypatch.setattr(metadata, "entry_points", lambda group: fake)
    found = load_plugins("parityspec.formats", BUILTIN)
    assert list(found) == ["csv"]
    declared = ReportFormat.of(found["csv"])
    assert (declared.file, declared.template, declared.whole) == ("checks.csv", None, False)
    assert load_plugins("parityspec.formats", {"csv": BUILTIN["json"]}) == {}  # built-ins win


def test_without_the_plugin_csv_is_not_a_format(invoke, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    result = invoke("validate", spec)
    assert result.exit_code == 2
    assert "report.formats[1]: 'csv' is not allowed" in result.output, result.output


def test_a_plugin_format_validates_is_in_the_schema_and_is_written(tmp_path):
    env = install(tmp_path / "site")
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
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
    (schema_code, schema), (valid_code, valid), (run_code, ran) = json.loads(done.stdout)
    formats = json.loads(schema)["$defs"]["ReportSpec"]["properties"]["formats"]
    assert schema_code == 0 and formats["items"]["enum"] == [*BUILTIN, "csv"]
    assert valid_code == 0, valid
    assert run_code == 1, ran  # `far` fails: 0.15 > 0.05
    out = tmp_path / "out"
    assert f"wrote {out / 'checks.csv'}" in ran
    report = json.loads((out / "report.json").read_text())
    with (out / "checks.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["id"], r["type"], r["status"]) for r in rows] == [
        (c["id"], c["type"], c["status"]) for c in report["checks"]
    ]
    by_id = {r["id"]: r for r in rows}
    assert (by_id["far"]["figure"], by_id["far"]["limit"]) == ("max_abs_diff", "tolerance")
    assert float(by_id["far"]["value"]) > float(by_id["far"]["limit_value"]) == 0.05
    assert by_id["labels"]["figure"] == "agreement" and float(by_id["labels"]["value"]) == 1.0


def test_a_plugin_format_writing_another_formats_file_is_skipped(caplog):
    from types import ModuleType

    from parityspec.report.formats import BUILTIN, registered

    def plugin(name: str, file: str) -> ModuleType:
        module = ModuleType(f"plugin_{name}")
        module.FORMAT, module.FILE = name, file  # type: ignore[attr-defined]
        module.render = lambda report, context: ""  # type: ignore[attr-defined]
        return module

    formats = registered(
        BUILTIN, {"clash": plugin("clash", "report.md"), "fine": plugin("fine", "checks.csv")}
    )
    assert "clash" not in formats and formats["fine"].file == "checks.csv"
    assert "plugin format 'clash' writes report.md as 'markdown' does; skipped" in caplog.text
