"""A team's own code (issue 13.7): the spec's folder is importable while user code loads,
`python_path` adds others, a transformer without a converter says how to register one, and
`converters` names the functions that register them before the export."""

from __future__ import annotations

import sys

import joblib
import pytest

from tests.families.conftest import checks, run_spec

TEAMLIB = """
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def team_model():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
"""
BUILDER = """
def build():
    from {module} import team_model  # imported when called, as builders often do

    return team_model()
"""
DOUBLER = """
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class Doubler(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X, dtype=np.float64) * 2
"""
REGISTER = """
import numpy as np
from skl2onnx import update_registered_converter
from skl2onnx.algebra.onnx_ops import OnnxMul


def shape(operator):
    given = operator.inputs[0].type
    operator.outputs[0].type = given.__class__([None, given.shape[1]])


def convert(scope, operator, container):
    two = np.array([2], dtype=np.float32)
    out = operator.outputs[0].full_name
    mul = OnnxMul(operator.inputs[0], two, op_version=container.target_opset, output_names=[out])
    mul.add_to(scope, container)


def register():
    from team_doubler import Doubler

    update_registered_converter(Doubler, "TeamDoubler", shape, convert)
"""
LABELS = [{"id": "labels", "type": "label_agreement", "between": ["sk", "onnx"]}]


def spec(backend: dict) -> dict:
    return {
        "name": "team",
        "data": {"path": "rows.csv", "target": "y"},
        "model": {"task": "binary"},
        "backends": {"sk": {"kind": "sklearn", **backend}, "onnx": {"kind": "onnx", "from": "sk"}},
        "checks": LABELS,
    }


@pytest.fixture
def folder(cancer, tmp_path):
    _, features, target = cancer
    features.fillna(0).assign(y=target).to_csv(tmp_path / "rows.csv", index=False)
    return tmp_path


def test_a_builder_imports_a_module_beside_the_spec(invoke, folder):
    (folder / "teamlib_beside.py").write_text(TEAMLIB)
    (folder / "builder.py").write_text(BUILDER.format(module="teamlib_beside"))
    exit_code, _, output = run_spec(invoke, folder, spec({"train": "builder.py:build"}))
    assert exit_code == 0, output


def test_python_path_adds_a_folder_and_without_it_the_error_says_so(invoke, folder):
    (folder / "lib").mkdir()
    (folder / "lib" / "teamlib_elsewhere.py").write_text(TEAMLIB)
    (folder / "builder.py").write_text(BUILDER.format(module="teamlib_elsewhere"))
    exit_code, _, output = run_spec(invoke, folder, spec({"train": "builder.py:build"}))
    assert exit_code == 2, output
    assert "imports teamlib_elsewhere, which is neither installed nor in the spec's folder" in (
        output
    )
    assert "python_path" in output and "Traceback" not in output
    backend = {"train": "builder.py:build", "python_path": ["lib"]}
    exit_code, _, output = run_spec(invoke, folder, spec(backend))
    assert exit_code == 0, output


def test_python_path_must_name_a_folder(invoke, folder):
    (folder / "builder.py").write_text(BUILDER.format(module="teamlib_beside"))
    backend = {"train": "builder.py:build", "python_path": ["nowhere"]}
    exit_code, _, output = run_spec(invoke, folder, spec(backend))
    assert exit_code == 2, output
    assert "python_path: nowhere is not a folder" in output


@pytest.fixture
def pickled_team_pipeline(folder, cancer, monkeypatch):
    """A pipeline with the team's Doubler, pickled by reference to `team_doubler`, which the
    run must import from the spec's folder (the test's own import is undone)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    (folder / "team_doubler.py").write_text(DOUBLER)
    _, features, target = cancer
    with monkeypatch.context() as patch:
        patch.syspath_prepend(str(folder))
        from team_doubler import Doubler

        model = make_pipeline(Doubler(), StandardScaler(), LogisticRegression())
        model.fit(features.fillna(0), target)
        joblib.dump(model, folder / "team.joblib")
    monkeypatch.delitem(sys.modules, "team_doubler")
    return folder


def test_a_transformer_without_a_converter_names_it_and_how_to_register_one(
    invoke, pickled_team_pipeline
):
    folder = pickled_team_pipeline
    backend = {"path": "team.joblib", "trusted": True}
    exit_code, report, output = run_spec(invoke, folder, spec(backend))
    assert exit_code == 3, output  # the model loaded: its module came from the spec's folder
    line = next(line for line in output.splitlines() if "export:onnx" in line)
    assert "team_doubler.Doubler has no skl2onnx converter" in line
    error = next(s for s in report["steps"] if s["id"] == "export:onnx")["reason"]
    assert "update_registered_converter" in error and "converters: [file.py:function]" in error


def test_named_converters_are_registered_before_the_export(invoke, pickled_team_pipeline):
    folder = pickled_team_pipeline
    (folder / "register.py").write_text(REGISTER)
    backend = {"path": "team.joblib", "trusted": True, "converters": ["register.py:register"]}
    probability = {"id": "parity", "type": "probability_parity", "between": ["sk", "onnx"]}
    exit_code, report, output = run_spec(invoke, folder, spec(backend) | {"checks": [probability]})
    assert exit_code == 0, output
    assert checks(report)["parity"]["figures"]["max_abs_diff"] < 1e-4


def test_a_converters_file_that_is_missing_fails_validate(invoke, folder):
    import yaml

    (folder / "builder.py").write_text(BUILDER.format(module="teamlib_beside"))
    path = folder / "missing.yaml"
    backend = {"train": "builder.py:build", "converters": ["nowhere.py:register"]}
    path.write_text(yaml.safe_dump({"parityspec": 1, **spec(backend)}))
    result = invoke("validate", path)
    assert result.exit_code == 2
    assert "backends.sk.converters.0" in result.output and "nowhere.py" in result.output


def test_a_function_transformer_of_a_team_function_says_how_to_convert_it(invoke, folder):
    (folder / "team_functions.py").write_text("def double(x):\n    return x * 2\n")
    (folder / "builder.py").write_text(
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.pipeline import make_pipeline\n"
        "from sklearn.preprocessing import FunctionTransformer\n"
        "from team_functions import double\n\n\n"
        "def build():\n"
        "    return make_pipeline(FunctionTransformer(double), LogisticRegression())\n"
    )
    exit_code, report, output = run_spec(invoke, folder, spec({"train": "builder.py:build"}))
    assert exit_code == 3, output
    reason = next(s for s in report["steps"] if s["id"] == "export:onnx")["reason"]
    assert "a FunctionTransformer of your own function has no skl2onnx converter" in reason
    assert "make it a transformer class" in reason and "converters: [file.py:function]" in reason
