"""The sweep report of a spec with backend matrices: JSON, Markdown, HTML, cache, exit code."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from parityspec.cli import cli
from parityspec.report.build import _shade, _used
from tests.conftest import REPO, SPECS


def run_sweep(out: Path, cache: Path):
    env = {"PARITYSPEC_CACHE_DIR": str(cache)}  # a cache of this module's own
    args = ["run", str(SPECS / "churn_sweep.yaml"), "--out", str(out)]
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("sweep_cache")


@pytest.fixture(scope="module")
def churn_sweep(tmp_path_factory, cache):
    """The bundled sweep spec, run once into a folder of its own."""
    out = tmp_path_factory.mktemp("churn_sweep")
    return run_sweep(out, cache), out


def test_the_bundled_sweep_exits_with_its_worst_verdict(churn_sweep):
    result, out = churn_sweep
    report = json.loads((out / "report.json").read_text())
    assert result.exit_code == 1 == report["exit_code"]  # static fails; the rest pass
    statuses = {c["status"] for c in report["checks"]}
    assert statuses == {"passed", "failed"}


def test_the_sweep_section_has_a_row_per_combination_and_check(churn_sweep):
    report = json.loads((churn_sweep[1] / "report.json").read_text())
    tables = {t["check"]: t for t in report["sweep"]}
    assert list(tables) == ["int8-parity", "int8-labels"]
    parity = tables["int8-parity"]
    assert parity["axes"] == ["method", "per_channel", "graph_optimization_level"]
    assert parity["headline"] == "max_abs_diff"
    assert parity["total"] == 6  # 2 x 2 x 2, less the excluded per-channel at `disabled`
    assert {
        "method": "dynamic",
        "per_channel": True,
        "graph_optimization_level": "disabled",
    } not in [r["values"] for r in parity["rows"]]
    checks = {c["id"]: c for c in report["checks"]}
    for row in parity["rows"]:
        check = checks[row["id"]]
        assert row["status"] == check["status"]
        assert row["headline"] == check["figures"]["max_abs_diff"]
        # The expected verdicts of this spec: every static recipe fails, every dynamic passes.
        assert row["status"] == ("failed" if row["values"]["method"] == "static" else "passed")
    assert parity["passed"] == 3


def test_the_readme_s_figures(churn_sweep):
    report = json.loads((churn_sweep[1] / "report.json").read_text())
    tables = {t["check"]: t for t in report["sweep"]}

    def headline(check: str, method: str, per_channel: bool, level: str = "all") -> float:
        values = {"method": method, "per_channel": per_channel, "graph_optimization_level": level}
        return next(r["headline"] for r in tables[check]["rows"] if r["values"] == values)

    assert headline("int8-parity", "dynamic", False) == pytest.approx(0.0104, abs=5e-5)
    assert headline("int8-parity", "dynamic", True) == pytest.approx(0.0124, abs=5e-5)
    assert headline("int8-parity", "static", False) == pytest.approx(0.408, abs=5e-4)
    assert headline("int8-parity", "static", True) == pytest.approx(0.406, abs=5e-4)
    assert headline("int8-labels", "static", False) == 0.965
    assert headline("int8-labels", "dynamic", True) == 1.0
    # The optimisation level changes no figure on this graph.
    for check in tables:
        for method in ("dynamic", "static"):
            assert headline(check, method, False, "disabled") == headline(check, method, False)


def test_markdown_and_html_show_the_sweep_table(churn_sweep):
    out = churn_sweep[1]
    markdown = (out / "report.md").read_text()
    assert "### Sweep" in markdown
    assert "| method | per_channel | graph_optimization_level | max_abs_diff |" in markdown
    assert "| static | false | all |" in markdown
    html = (out / "report.html").read_text()
    assert '<section class="sweep" id="sweep">' in html
    assert html.count('style="background: hsl(') == 12  # each row's headline, shaded


def test_json_is_the_same_bytes_when_run_again_from_the_cache(churn_sweep, cache, tmp_path):
    assert run_sweep(tmp_path, cache).exit_code == 1
    first = json.loads((churn_sweep[1] / "report.json").read_text())
    again = json.loads((tmp_path / "report.json").read_text())
    assert len(again["run"]["from_cache"]) == len(again["steps"])  # nothing ran again
    first.pop("run"), again.pop("run")
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)


def sweep_spec(folder: Path, methods: list[str]) -> Path:
    document = {
        "parityspec": 1,
        "name": "grow",
        "data": {
            "path": str(REPO / "examples/churn/churn.csv"),
            "target": "churned",
            "rows": 600,
            "split": {"test_size": 0.25, "seed": 1},
        },
        "model": {"task": "binary"},
        "backends": {
            "sklearn": {
                "kind": "sklearn",
                "train": f"{REPO / 'examples/churn/train.py'}:build_pipeline",
            },
            "onnx": {"kind": "onnx", "from": "sklearn"},
            "int8": {"kind": "quantized", "from": "onnx", "matrix": {"method": methods}},
        },
        "checks": [
            {"id": "p", "type": "probability_parity", "between": ["onnx", "int8"]},
            {"id": "plain", "type": "probability_parity", "between": ["sklearn", "onnx"]},
        ],
        "report": {"formats": ["json"]},
    }
    path = folder / "grow.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def test_adding_a_value_runs_only_the_new_combination(tmp_path, invoke):
    spec = sweep_spec(tmp_path, ["dynamic"])
    assert invoke("run", spec, "--out", tmp_path / "one").exit_code in (0, 1)
    spec = sweep_spec(tmp_path, ["dynamic", "static"])
    assert invoke("run", spec, "--out", tmp_path / "two").exit_code in (0, 1)
    report = json.loads((tmp_path / "two" / "report.json").read_text())
    # The data steps read the file again (they are not cached); nothing else of `dynamic`.
    ran = {s["id"] for s in report["steps"]} - set(report["run"]["from_cache"])
    ran -= {"data:load", "data:split"}
    assert ran == {
        "quantize:int8[method=static]",
        "predict:int8[method=static]",
        "check:p[method=static]",
    }
    assert "check:p[method=dynamic]" in report["run"]["from_cache"]
    assert [r["values"] for r in report["sweep"][0]["rows"]] == [
        {"method": "dynamic"},
        {"method": "static"},
    ]
    assert [t["check"] for t in report["sweep"]] == ["p"]  # `plain` sweeps nothing


def test_a_spec_without_a_matrix_has_no_sweep_section(tmp_path, invoke):
    spec = sweep_spec(tmp_path, ["dynamic"])
    document = yaml.safe_load(spec.read_text())
    del document["backends"]["int8"]["matrix"]
    spec.write_text(yaml.safe_dump(document, sort_keys=False))
    invoke("run", spec, "--out", tmp_path / "plain")
    report = json.loads((tmp_path / "plain" / "report.json").read_text())
    assert "sweep" not in report
    assert [c["id"] for c in report["checks"]] == ["p", "plain"]


def gate(value: float, op: str = "<=", limit: float = 0.1, ok: bool | None = None) -> dict:
    passed = value <= limit if op == "<=" else value >= limit
    return {"value": value, "op": op, "limit_value": limit, "ok": passed if ok is None else ok}


def test_use_of_the_limit_and_its_shade():
    assert _used(gate(0.05)) == 0.5
    assert _used(gate(0.99, ">=", 0.99)) == 1.0
    assert _used(gate(0.0, ">=", 0.99)) is None  # infinitely far below
    assert _used(gate(math.nan)) is None
    assert _shade(0.0, True) == "hsl(120, 75%, 78%)"
    assert _shade(1.0, True) == "hsl(60, 75%, 78%)"
    assert _shade(5.0, False) == "hsl(0, 75%, 78%)"
    # NaN never passes, and never reads as green.
    assert _shade(_used(gate(math.nan)), gate(math.nan)["ok"]) == "hsl(0, 75%, 78%)"
