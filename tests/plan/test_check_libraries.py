"""A check that declares the libraries its result depends on has their versions in its cache
key: upgrading hypothesis makes `input_search` search again, and keys nothing else."""

from __future__ import annotations

from importlib.metadata import version

from parityspec.api import plan
from tests.conftest import SPECS


def test_input_search_keys_hash_hypothesis_and_no_other_check_does():
    search = plan(SPECS / "churn_forest_search.yaml")
    (step,) = [s for s in search.steps if s.action == "check"]
    assert step.fragment["libraries"] == {"hypothesis": version("hypothesis")}
    others = [s for s in plan(SPECS / "churn.yaml").steps if s.action == "check"]
    assert others and all("libraries" not in s.fragment for s in others)
