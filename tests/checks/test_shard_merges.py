"""Laws of the checks that compute on shards (`checks.base.ShardedCheck`): the rows split into
any shards, each summed up alone and the summaries merged in any order, conclude to exactly
the result of the whole rows: the same figures, details, gates and reason, bit for bit. This
is what makes a run on Dask workers write the report of a local run."""

from __future__ import annotations

import json
import math
from functools import reduce
from itertools import pairwise

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parityspec.backends.base import Predictions
from parityspec.checks import CHECKS, output_parity, probability_parity
from parityspec.checks.base import CheckInputs, CheckResult
from parityspec.data import Dataset
from parityspec.run.distributed import sharded
from tests.checks.conftest import (
    CANDIDATE,
    REFERENCE,
    build_inputs,
    build_spec,
    check_spec,
    default_dataset,
    resolve_tolerances,
)

SETTINGS = settings(max_examples=60, deadline=None)
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

# Ties, exact agreement, NaN and infinities, values of every size.
ELEMENT = st.one_of(
    st.sampled_from([0.0, 0.25, 0.5, 1.0]),
    st.floats(0, 1),
    st.sampled_from([math.nan, math.inf]),
    st.floats(-1e6, 1e6, allow_nan=False),
)


def as_json(result: CheckResult) -> str:
    return json.dumps(
        {
            "status": result.status,
            "reason": result.reason,
            "figures": result.figures,
            "tolerances": result.tolerances,
            "details": result.details,
            "gates": [g.as_dict() for g in result.gates],
        },
        sort_keys=True,
        default=str,
    )


def shard_inputs(whole: CheckInputs, start: int, stop: int) -> CheckInputs:
    """The rows [start, stop) as a worker sees them: its own rows, numbered from `start`."""
    features = whole.data.features.iloc[start:stop].reset_index(drop=True)
    target = None if whole.data.target is None else whole.data.target[start:stop]
    return CheckInputs(
        whole.spec,
        Dataset(features, target),
        Predictions(REFERENCE, {n: v[start:stop] for n, v in whole.reference.outputs.items()}),
        Predictions(CANDIDATE, {n: v[start:stop] for n, v in whole.candidate.outputs.items()}),
        first_row=start,
    )


def assert_shards_conclude_as_the_whole(module, check, whole: CheckInputs, cuts, order) -> None:
    tolerances = resolve_tolerances(check)
    parts = [
        module.summarize(check, tolerances, shard_inputs(whole, a, b)) for a, b in pairwise(cuts)
    ]
    merged = reduce(lambda x, y: x.merge(y), [parts[i] for i in order])
    from_shards = module.conclude(check, tolerances, merged, whole)
    assert as_json(from_shards) == as_json(module.run(check, tolerances, whole))


@st.composite
def split(draw, rows: int):
    inner = draw(st.lists(st.integers(1, rows - 1), unique=True)) if rows > 1 else []
    cuts = [0, *sorted(inner), rows]
    order = draw(st.permutations(range(len(cuts) - 1)))
    return cuts, order


@st.composite
def probabilities(draw):
    rows, columns = draw(st.integers(1, 40)), draw(st.integers(2, 3))
    ref = draw(hnp.arrays(np.float64, (rows, columns), elements=ELEMENT))
    other = draw(hnp.arrays(np.float64, (rows, columns), elements=ELEMENT))
    return ref, other, draw(split(rows)), draw(st.integers(1, 7))


@SETTINGS
@given(probabilities(), st.booleans())
def test_probability_parity_from_shards_is_the_whole(case, distances):
    ref, other, (cuts, order), batch_size = case
    profiles = {"d": {"extends": "lenient", "max_kl_divergence": 0.1}} if distances else None
    spec = build_spec("binary", batch_size=batch_size, worst_samples=3, profiles=profiles)
    check = check_spec(probability_parity, **({"profile": "d"} if distances else {}))
    profile_tolerances = {"d": spec.profiles["d"]} if distances else None
    whole = build_inputs(ref, other, "binary", spec=spec, data=default_dataset(len(ref)))
    tolerances = resolve_tolerances(check, profile_tolerances)
    parts = [
        probability_parity.summarize(check, tolerances, shard_inputs(whole, a, b))
        for a, b in pairwise(cuts)
    ]
    merged = reduce(lambda x, y: x.merge(y), [parts[i] for i in order])
    from_shards = probability_parity.conclude(check, tolerances, merged, whole)
    assert as_json(from_shards) == as_json(probability_parity.run(check, tolerances, whole))


@st.composite
def outputs(draw):
    rows = draw(st.integers(1, 30))
    shape = draw(st.sampled_from([(rows,), (rows, 3), (rows, 2, 2)]))
    ref = draw(hnp.arrays(np.float64, shape, elements=ELEMENT))
    other = draw(hnp.arrays(np.float64, shape, elements=ELEMENT))
    return ref, other, draw(split(rows)), draw(st.integers(1, 7))


@SETTINGS
@given(outputs(), st.booleans())
def test_output_parity_from_shards_is_the_whole(case, two_outputs):
    ref, other, (cuts, order), batch_size = case
    spec = build_spec("tensor", batch_size=batch_size, worst_samples=3)
    if two_outputs:  # each output summed up on its own, then judged together
        ref, other = {"a": ref, "b": ref * 2}, {"a": other, "b": ref}
    whole = build_inputs(ref, other, "tensor", spec=spec, data=default_dataset(cuts[-1]))
    check = check_spec(output_parity, profile="lenient")  # its distance gates on too
    assert_shards_conclude_as_the_whole(output_parity, check, whole, cuts, order)


def test_the_checks_that_shard_are_those_with_summaries():
    """A module with both hooks computes on workers; the others are refused there."""
    assert sharded(probability_parity) and sharded(output_parity)
    assert all(sharded(m) == hasattr(m, "summarize") for m in CHECKS.values())
