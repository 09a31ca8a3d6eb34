"""Small real models of each gradient-boosting family, and running a spec over them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml


@pytest.fixture(scope="session")
def cancer(tmp_path_factory) -> tuple[Path, pd.DataFrame, pd.Series]:
    """breast_cancer with identifier-like column names and a gap in every 7th row of the
    first column (each library learns a direction for missing values), as rows.csv."""
    from sklearn.datasets import load_breast_cancer

    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    features.columns = [c.replace(" ", "_") for c in features.columns]
    features.iloc[::7, 0] = np.nan
    folder = tmp_path_factory.mktemp("cancer")
    features.assign(y=target).to_csv(folder / "rows.csv", index=False)
    return folder, features, target


def run_spec(invoke, folder: Path, spec: dict) -> tuple[int, dict, str]:
    """Writes `spec` into `folder` and runs it: the exit code, report.json and the output."""
    spec = {"parityspec": 1, "name": "family", "report": {"dir": "out"}, **spec}
    path = folder / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    result = invoke("run", path, "--out", folder / "out" / spec["name"])
    report_file = folder / "out" / spec["name"] / "report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else {}
    return result.exit_code, report, result.output


def checks(report: dict) -> dict[str, dict]:
    return {c["id"]: c for c in report["checks"]}
