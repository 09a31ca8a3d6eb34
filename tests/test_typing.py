"""mypy, with the `[tool.mypy]` settings of pyproject.toml, over the modules typed so far.

`CLEAN` grows until it is the whole package; then this checks `parityspec/` itself. Until
then imports are followed silently: a listed module is checked against the modules it
imports, whose own errors are not reported here.
"""

from __future__ import annotations

from pathlib import Path

from mypy import api as mypy_api

ROOT = Path(__file__).resolve().parents[1]

CLEAN = [
    "parityspec/artifacts.py",
    "parityspec/cli.py",
    "parityspec/cli_output.py",
    "parityspec/cli_supervisor.py",
    "parityspec/data/__init__.py",
    "parityspec/data/chunked.py",
    "parityspec/data/sources.py",
    "parityspec/errors.py",
    "parityspec/loading.py",
    "parityspec/plan/graph.py",
    "parityspec/plan/render.py",
    "parityspec/report/diff.py",
    "parityspec/backends/context.py",
    "parityspec/run/executor.py",
    "parityspec/run/interrupts.py",
    "parityspec/data/stored.py",
    "parityspec/scaffold.py",
    "parityspec/spec/base.py",
    "parityspec/spec/load.py",
    "parityspec/spec/locate.py",
    "parityspec/spec/yaml_source.py",
]


def test_clean_modules_type_check(tmp_path: Path) -> None:
    stdout, stderr, status = mypy_api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "mypy_cache"),  # a fresh cache: no stale result passes for a check
            "--follow-imports=silent",
            *(str(ROOT / path) for path in CLEAN),
        ]
    )
    assert status == 0, stdout + stderr
