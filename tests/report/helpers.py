"""Specs for the report tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

FORMATS = ["json", "markdown", "junit", "html"]


def model_file_spec(assets: Path, **backends: dict[str, Any]) -> dict[str, Any]:
    """Two ONNX backends loaded from the same file, compared by label: nothing is trained,
    converted or unpickled. `backends` replaces either of them."""
    return {
        "parityspec": 1,
        "name": "model-files",
        "data": {"path": str(assets / "data.csv"), "target": "target"},
        "model": {"task": "binary"},
        "backends": {
            "a": {"kind": "onnx", "path": str(assets / "model.onnx")},
            "b": {"kind": "onnx", "path": str(assets / "model.onnx")},
            **backends,
        },
        "checks": [{"id": "labels", "type": "label_agreement", "between": ["a", "b"]}],
        "report": {"dir": "out", "formats": FORMATS},
    }


def write_spec(folder: Path, spec: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path
