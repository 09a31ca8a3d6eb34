"""Model files from elsewhere: nothing in them runs unless the user says it may.

A pickle whose `__reduce__` writes a marker file stands for any payload. By default it is
refused unread; `validate` and `plan` never load a model; `--trust-models` (or `trusted: true`)
runs it — the marker appears — and the run then fails cleanly, since what it unpickled
(`None`) is no estimator. skops files are checked for types outside skops' trusted set.
"""

from __future__ import annotations

import operator
import pickle
from pathlib import Path

import pytest

from tests.bad_input.helpers import complete_report, default_spec, expect, no_report, write_spec


class _Payload:
    """Unpickling this runs `exec`: it writes the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


@pytest.fixture
def malicious(tmp_path, assets) -> tuple[Path, Path]:
    """(spec referencing a malicious pickle, the marker its payload would write)."""
    marker = tmp_path / "PWNED"
    model = tmp_path / "model.pkl"
    model.write_bytes(pickle.dumps(_Payload(marker)))
    spec = default_spec(assets)
    spec["backends"]["sk"] = {"kind": "sklearn", "path": str(model)}
    return write_spec(tmp_path, spec), marker


def test_malicious_pickle_is_not_loaded_by_default(invoke, tmp_path, malicious):
    spec, marker = malicious
    result = invoke("run", spec, "--out", tmp_path / "out")
    expect(result, 2, "model.pkl", "refusing to load a pickle", "--trust-models")
    assert not marker.exists()
    complete_report(tmp_path / "out", 2)


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_validate_and_plan_never_load_a_model(invoke, tmp_path, malicious, command):
    spec, marker = malicious
    result = invoke(command, spec)
    expect(result, 0)
    assert not marker.exists()
    no_report(tmp_path / "out")


def test_trust_models_runs_the_pickle(invoke, tmp_path, malicious):
    """Documented behaviour: trust means the payload runs. What it returned is no estimator,
    so the run stops there with a clean error."""
    spec, marker = malicious
    result = invoke("run", spec, "--out", tmp_path / "out", "--trust-models")
    expect(result, 2, "model.pkl", "holds a NoneType, not a fitted scikit-learn estimator")
    assert marker.read_text() == "pwned"
    complete_report(tmp_path / "out", 2)


def _skops_with_untrusted_type(folder: Path, assets: Path) -> Path:
    """A working pipeline whose FunctionTransformer calls `operator.neg`: a function skops
    does not trust by default."""
    import pandas as pd
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    frame = pd.read_csv(assets / "data.csv")
    model = make_pipeline(
        FunctionTransformer(func=operator.neg), LogisticRegression(max_iter=2000)
    ).fit(frame.drop(columns="target"), frame["target"])
    path = folder / "neg.skops"
    sio.dump(model, path)
    return path


def test_skops_with_an_untrusted_type_is_refused_naming_it(invoke, tmp_path, assets):
    spec = default_spec(assets)
    spec["backends"] = {
        "sk": spec["backends"]["sk"],
        "neg": {"kind": "sklearn", "path": str(_skops_with_untrusted_type(tmp_path, assets))},
    }
    spec["checks"] = [{"id": "labels", "type": "label_agreement", "between": ["sk", "neg"]}]
    path = write_spec(tmp_path, spec)
    result = invoke("run", path, "--out", tmp_path / "out")
    expect(result, 2, "neg.skops", "not known to be safe: _operator.neg", "--trust-models")
    complete_report(tmp_path / "out", 2)
    trusted = invoke("run", path, "--out", tmp_path / "trusted", "--trust-models")
    expect(trusted, 1, "check:labels")  # loaded and compared: an unscaled model disagrees
