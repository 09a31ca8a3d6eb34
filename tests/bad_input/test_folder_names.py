"""Backend and check ids name folders under the report folder. A swept id carries its values
(`torch[module=../examples/torch/nets.py:mlp]`): written as it is, it would make folders
outside the report folder. Each id is one folder directly under it, and two ids stay two."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from parityspec.artifacts import folder_name
from parityspec.report.render import check_artifacts

IDS = st.one_of(
    st.text(min_size=1, max_size=40),
    st.sampled_from(["..", ".", "../..", "a/../../b", ".hidden", "torch[module=../nets.py:mlp]"]),
)


@settings(max_examples=300, deadline=None)
@given(IDS)
def test_an_id_is_one_folder_right_under_the_report_folder(name):
    folder = folder_name(name)
    assert "/" not in folder and "\x00" not in folder and folder not in ("", ".", "..")
    base = Path("/report/artifacts")
    assert (base / folder).resolve().parent == base


@settings(max_examples=300, deadline=None)
@given(IDS, IDS)
def test_two_ids_stay_two_folders(a, b):
    if a != b:
        assert folder_name(a) != folder_name(b)


def test_plain_ids_keep_their_names():
    for name in ("onnx", "int8", "int8[method=static,per_channel=true]", "onnx-parity"):
        assert folder_name(name) == name


def test_a_swept_checks_artifacts_stay_in_the_report_folder():
    check = {
        "id": "parity[module=../../escape.py:net]",
        "type": "probability_parity",
        "figures": {"samples": 1, "max_abs_diff": 0.0, "mean_abs_diff": 0.0},
        "tolerances": {"abs_tol": 0.04, "mean_tol": 0.01},
        "passed": True,
    }
    (path,) = check_artifacts({"checks": [check]})
    assert path.startswith("artifacts/") and path.count("/") == 2 and ".." not in path.split("/")
