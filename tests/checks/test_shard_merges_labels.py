"""The laws of `test_shard_merges` for the checks that read decisions: label_agreement,
threshold_flips and score_parity. The rows split into any shards, each summed up alone (a
worker's rows, numbered from their first id, with the classes of their own ground truth),
the summaries merged in any order and concluded from the backends' facts alone (no
outputs, no rows, as the Dask client does) give the whole rows' result bit for bit."""

from __future__ import annotations

from dataclasses import replace
from functools import reduce
from itertools import pairwise
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parityspec.checks import label_agreement, score_parity, threshold_flips
from parityspec.checks.base import CheckInputs
from parityspec.data import Dataset
from parityspec.run.distributed import sharded
from tests.checks.conftest import build_inputs, build_spec, check_spec, resolve_tolerances
from tests.checks.test_shard_merges import ELEMENT, as_json, shard_inputs

SETTINGS = settings(max_examples=100, deadline=None)
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

PROFILES = st.sampled_from(["strict", "default", "lenient"])
# Where the model's classes come from: both backends (the candidate in its own order), one,
# the spec, the ground truth's distinct values (shards may lack a class), or nowhere.
KNOWN_BY = st.sampled_from(["backends", "reference", "declared", "data", "nothing"])
NAMES = st.sampled_from([[0, 1, 2], ["cat", "dog", "eel"]])
FINITE = st.one_of(  # `ELEMENT` without NaN and infinities
    st.sampled_from([0.0, 0.25, 0.5, 1.0]), st.floats(0, 1), st.floats(-1e6, 1e6)
)


@st.composite
def split(draw, rows: int):
    """`test_shard_merges.split` with two shards at least wherever the rows allow."""
    inner = draw(st.lists(st.integers(1, rows - 1), min_size=1, unique=True)) if rows > 1 else []
    cuts = [0, *sorted(inner), rows]
    return cuts, draw(st.permutations(range(len(cuts) - 1)))


def with_target(rows: int, target: np.ndarray | None) -> Dataset:
    """Rows whose features name them (f0 == row), with their ground truth's classes."""
    features = {"f0": np.arange(rows, dtype=np.float64)}
    classes = None if target is None else np.unique(target)
    return Dataset(pd.DataFrame(features), target, classes)


def worker_inputs(whole: CheckInputs, start: int, stop: int) -> CheckInputs:
    """The rows [start, stop) as a worker sees them: the backends' facts kept, the classes of
    the data those of these rows only."""
    shard = shard_inputs(whole, start, stop)
    if shard.data.target is not None:
        shard.data.classes = np.unique(shard.data.target)
    return replace(
        shard,
        reference=replace(whole.reference, outputs=shard.reference.outputs),
        candidate=replace(whole.candidate, outputs=shard.candidate.outputs),
    )


def facts_only(whole: CheckInputs) -> CheckInputs:
    """What the client concludes with: the backends' names and classes, no outputs, no rows."""
    return CheckInputs(
        whole.spec,
        Dataset({}),
        replace(whole.reference, outputs={}),
        replace(whole.candidate, outputs={}),
    )


def assert_shards_conclude_as_the_whole(module, check, whole: CheckInputs, cuts, order) -> None:
    tolerances = resolve_tolerances(check)
    parts = [
        module.summarize(check, tolerances, worker_inputs(whole, a, b)) for a, b in pairwise(cuts)
    ]
    merged = reduce(lambda x, y: x.merge(y), [parts[i] for i in order])
    from_shards = module.conclude(check, tolerances, merged, facts_only(whole))
    assert as_json(from_shards) == as_json(module.run(check, tolerances, whole))


def knowing(whole: CheckInputs, known_by: str, names: list, order: list[int]) -> CheckInputs:
    """`whole` with the classes known where `known_by` says."""
    if known_by == "declared":
        model = whole.spec.model.model_copy(update={"classes": names})
        whole.spec = whole.spec.model_copy(update={"model": model})
    if known_by in ("backends", "reference"):
        whole.reference.classes = names
    if known_by == "backends":
        whole.candidate.classes = [names[i] for i in order]
    return whole


@st.composite
def classified(draw, task: str | None = None) -> dict[str, Any]:
    """Rows of a classifier: their count, classes, ground truth, split and batch size."""
    rows = draw(st.integers(1, 30))
    n = 2 if task == "binary" else draw(st.integers(2, 3))
    names = draw(NAMES)[:n]
    known_by = draw(KNOWN_BY)
    order = draw(st.permutations(range(n)))
    target = None
    if known_by != "nothing":
        codes = draw(hnp.arrays(np.int64, rows, elements=st.integers(0, n - 1)))
        if rows >= n and draw(st.booleans()):  # every class in the rows, not in every shard
            codes[draw(st.permutations(range(rows)))[:n]] = np.arange(n)
        target = np.array(names)[codes]
    return {
        "rows": rows,
        "n": n,
        "names": names,
        "known_by": known_by,
        "order": list(order),
        "data": with_target(rows, target),
        "split": draw(split(rows)),
        "batch_size": draw(st.integers(1, 7)),
        "worst_samples": draw(st.integers(0, 4)),
        "elements": draw(st.sampled_from([ELEMENT, FINITE])),
    }


def floats(draw, shape: tuple[int, ...], elements=ELEMENT) -> np.ndarray:
    """Ties, exact agreement, values of every size; NaN and infinities unless `elements`
    are finite."""
    return draw(hnp.arrays(np.float64, shape, elements=elements))


@st.composite
def label_outputs(draw, rows: int, n: int, elements) -> dict[str, np.ndarray]:
    """One backend's outputs: labels (-1 is none of its classes), probabilities, or both;
    scores beside labels alone."""
    kinds = draw(st.sampled_from([("p",), ("l",), ("l", "p"), ("l", "s")]))
    outputs = {}
    if "l" in kinds:
        outputs["labels"] = draw(hnp.arrays(np.int64, rows, elements=st.integers(-1, n - 1)))
    if "p" in kinds:
        outputs["probabilities"] = floats(draw, (rows, n), elements)
    if "s" in kinds:
        outputs["scores"] = floats(draw, (rows, n), elements)
    return outputs


@SETTINGS
@given(classified(), st.data(), PROFILES)
def test_label_agreement_from_shards_is_the_whole(case, data, profile):
    rows, n = case["rows"], case["n"]
    ref = data.draw(label_outputs(rows, n, case["elements"]))
    cand = data.draw(label_outputs(rows, n, case["elements"]))
    task = "binary" if n == 2 else "multiclass"
    spec = build_spec(task, batch_size=case["batch_size"], worst_samples=case["worst_samples"])
    whole = build_inputs(ref, cand, task, spec=spec, data=case["data"])
    whole = knowing(whole, case["known_by"], case["names"], case["order"])
    check = check_spec(label_agreement, profile=profile)
    cuts, order = case["split"]
    assert_shards_conclude_as_the_whole(label_agreement, check, whole, cuts, order)


@SETTINGS
@given(classified("binary"), st.data(), PROFILES, st.sampled_from([0.5, 0.25, 0.75]))
def test_threshold_flips_from_shards_is_the_whole(case, data, profile, threshold):
    rows = case["rows"]
    ref = floats(data.draw, (rows, 2), case["elements"])
    cand = floats(data.draw, (rows, 2), case["elements"])
    spec = build_spec(
        "binary",
        threshold=threshold,
        batch_size=case["batch_size"],
        worst_samples=case["worst_samples"],
    )
    whole = build_inputs(ref, cand, "binary", spec=spec, data=case["data"])
    whole = knowing(whole, case["known_by"], case["names"], case["order"])
    check = check_spec(threshold_flips, profile=profile)
    cuts, order = case["split"]
    assert_shards_conclude_as_the_whole(threshold_flips, check, whole, cuts, order)


@SETTINGS
@given(classified(), st.data(), PROFILES, st.booleans())
def test_score_parity_from_shards_is_the_whole(case, data, profile, per_class):
    """One score per row (binary), or one per class in each backend's own class order."""
    rows, n = case["rows"], case["n"]
    shape = (rows, n) if per_class else (rows,)
    ref = floats(data.draw, shape, case["elements"])
    cand = floats(data.draw, shape, case["elements"])
    task = "multiclass" if per_class else "binary"
    spec = build_spec(task, batch_size=case["batch_size"], worst_samples=case["worst_samples"])
    whole = build_inputs({"scores": ref}, {"scores": cand}, task, spec=spec, data=case["data"])
    whole = knowing(whole, case["known_by"], case["names"], case["order"])
    check = check_spec(score_parity, profile=profile)
    cuts, order = case["split"]
    assert_shards_conclude_as_the_whole(score_parity, check, whole, cuts, order)


@pytest.mark.parametrize(
    ("module", "ref", "cand", "reason"),
    [
        (
            label_agreement,
            {"probabilities": np.full((6, 2), 0.5)},
            {"probabilities": np.full((6, 3), 0.5)},
            "probability shapes differ: (6, 2) vs (6, 3)",
        ),
        (
            score_parity,
            {"scores": np.zeros((6, 2))},
            {"scores": np.zeros((6, 3))},
            "scores: shapes differ, [6, 2] vs [6, 3]",
        ),
        (
            label_agreement,
            {"scores": np.zeros(6)},
            {"labels": np.zeros(6, dtype=np.int64)},
            "ref returns neither labels nor probabilities",
        ),
        (
            score_parity,
            {"scores": np.zeros(6)},
            {"labels": np.zeros(6)},
            "no decision scores from cand",
        ),
    ],
)
def test_a_failure_from_shards_names_the_whole_rows(module, ref, cand, reason):
    """Outputs that cannot be compared fail as the whole rows do: shapes with every row."""
    whole = build_inputs(ref, cand, "multiclass", data=with_target(6, None))
    check = check_spec(module)
    assert_shards_conclude_as_the_whole(module, check, whole, [0, 2, 3, 6], [2, 0, 1])
    result = module.run(check, resolve_tolerances(check), whole)
    assert (result.status, result.reason) == ("failed", reason)


def test_these_checks_compute_on_shards():
    assert all(sharded(m) for m in (label_agreement, threshold_flips, score_parity))


def test_the_data_classes_of_shards_name_the_columns_as_the_whole_does():
    """No backend says its classes: the ground truth's name the columns. A shard holding
    only "dog" rows cannot tell the columns apart alone; merged, the shards can."""
    target = np.array(["dog", "dog", "cat", "dog"])
    ref = np.array([[0.2, 0.8], [0.3, 0.7], [0.9, 0.1], [0.4, 0.6]])
    whole = build_inputs(ref, ref.copy(), "binary", data=with_target(4, target))
    for module in (label_agreement, threshold_flips):
        check = check_spec(module)
        assert_shards_conclude_as_the_whole(module, check, whole, [0, 2, 4], [0, 1])
        details = module.run(check, resolve_tolerances(check), whole).details
        assert details["classes_from"] == "data"
    check = check_spec(threshold_flips)
    assert (
        threshold_flips.run(check, resolve_tolerances(check), whole).details["positive_class"]
        == "dog"
    )
