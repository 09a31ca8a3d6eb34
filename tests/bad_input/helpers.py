"""Shared by the bad-input tests: a spec writer with absolute paths and the assertions every
case makes (exit code, one clear line, no traceback, a report that is whole or absent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

REPORT_KEYS = {"verdict", "exit_code", "checks", "steps", "summary"}


def default_spec(assets: Path) -> dict[str, Any]:
    """A scikit-learn pipeline (imputer, scaler, logistic regression) trained on the assets'
    data, against its ONNX export."""
    return {
        "parityspec": 1,
        "name": "bad-input",
        "data": {
            "path": str(assets / "data.csv"),
            "target": "target",
            "split": {"test_size": 0.3, "seed": 0},
        },
        "model": {"task": "binary"},
        "backends": {
            "sk": {"kind": "sklearn", "train": f"{assets / 'builder.py'}:build"},
            "onnx": {"kind": "onnx", "from": "sk"},
        },
        "checks": [{"id": "parity", "type": "probability_parity", "between": ["sk", "onnx"]}],
    }


def write_spec(folder: Path, spec: dict[str, Any], name: str = "spec.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def expect(result, code: int, *needles: str) -> str:
    """The exit code, every needle in the output, and no traceback."""
    output = result.output
    assert result.exit_code == code, output
    assert "Traceback" not in output, output
    for needle in needles:
        assert needle in output, f"{needle!r} not in:\n{output}"
    return output


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:") or " ERROR " in line]


def no_report(out: Path) -> None:
    """Failures before any step runs write nothing."""
    assert not (out / "report.json").exists()
    assert not (out / "report.md").exists()


def complete_report(out: Path, code: int) -> dict[str, Any]:
    """A run that failed while running still writes a whole report naming the failure."""
    report = json.loads((out / "report.json").read_text())
    assert set(report) >= REPORT_KEYS, sorted(report)
    assert report["exit_code"] == code
    for step in report["steps"]:
        assert "\n" not in (step.get("reason") or "")
    return report


def failed_step(report: dict[str, Any]) -> dict[str, Any]:
    errors = [s for s in report["steps"] if s["status"] == "error"]
    assert errors, report["steps"]
    return errors[0]
