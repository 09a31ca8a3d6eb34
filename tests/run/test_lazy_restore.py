"""A model restored from the step cache opens its runtime only when something reads it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from parityspec.api import RunOptions, run
from parityspec.errors import StepError
from parityspec.run.cache import OpenedOnUse, StepCache
from tests.conftest import SPECS

SPEC = SPECS / "iris.yaml"
EXPORT = "export:logreg-onnx"


@pytest.fixture
def warm(tmp_path):
    """A warm run of one check: every step restored, the ONNX export never opened."""
    options = RunOptions(
        checks=("logreg-parity",), out=tmp_path / "cold", cache_dir=tmp_path / "cache"
    )
    run(SPEC, options)
    return run(SPEC, replace(options, out=tmp_path / "warm"))


def test_a_restored_model_opens_when_read(warm):
    model = warm.state.outcomes[EXPORT].value
    assert isinstance(model, OpenedOnUse) and model._open is not None
    assert repr(model) == "OpenedOnUse('logreg-onnx', 'onnx', not opened)"
    assert model.predictor.path == model.files["model"]
    assert model._open is None


def test_a_restored_model_that_does_not_load_fails_its_reader_and_leaves_the_cache(warm, tmp_path):
    model = warm.state.outcomes[EXPORT].value
    model.files["model"].write_bytes(b"\x08\x07 not a protobuf")
    with pytest.raises(StepError, match=rf"cache entry of {EXPORT} was damaged \(the cached "
                       r"model does not load: .*\); run again to recompute it"):  # fmt: skip
        _ = model.predictor
    step = warm.state.outcomes[EXPORT].step
    assert not StepCache(tmp_path / "cache").has(step)
