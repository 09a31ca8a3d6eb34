"""top_k_agreement: the k most probable classes of each row, compared as sets."""

from __future__ import annotations

import numpy as np
import pytest

from parityspec.checks import top_k_agreement

REFERENCE = np.array(
    [
        [0.40, 0.30, 0.20, 0.10],
        [0.10, 0.20, 0.30, 0.40],
        [0.25, 0.35, 0.30, 0.10],
        [0.70, 0.10, 0.15, 0.05],
    ]
)
# Row 0 reorders its top 3 (another arg-max, the same set); row 2 swaps its third class
# for the fourth; rows 1 and 3 are unchanged.
CANDIDATE = np.array(
    [
        [0.20, 0.30, 0.40, 0.10],
        [0.10, 0.20, 0.30, 0.40],
        [0.25, 0.35, 0.10, 0.30],
        [0.70, 0.10, 0.15, 0.05],
    ]
)


def test_a_reordered_top_k_agrees_and_a_swapped_member_does_not(run):
    result = run(top_k_agreement, REFERENCE, CANDIDATE, task="multiclass")
    assert result.figures == {"samples": 4, "k": 3, "agreement": 0.75, "disagreements": 1}
    assert result.details["disagreeing_rows"] == [
        {"row": 2, "reference": ["0", "1", "2"], "candidate": ["0", "1", "3"]}
    ]
    assert result.status == "failed"  # default profile: min_top_k_agreement 0.999
    assert "3 of 4 samples rank the same top 3" in result.reason


def test_the_check_reads_its_own_tolerance_from_profile_and_override(run):
    lenient = run(top_k_agreement, REFERENCE, CANDIDATE, check={"profile": "lenient"})
    assert lenient.tolerances == {"min_top_k_agreement": 0.99}
    own = run(top_k_agreement, REFERENCE, CANDIDATE, check={"min_top_k_agreement": 0.75})
    assert own.status == "passed" and own.tolerances == {"min_top_k_agreement": 0.75}


def test_a_smaller_k_looks_only_at_the_top(run):
    """At k=1, row 0 (its arg-max moved) disagrees and row 2 (its third class) agrees."""
    result = run(top_k_agreement, REFERENCE, CANDIDATE, check={"k": 1}, batch_size=1)
    assert result.figures["agreement"] == 0.75
    assert result.details["disagreeing_rows"] == [
        {"row": 0, "reference": ["0"], "candidate": ["2"]}
    ]


@pytest.mark.parametrize("k", [4, 5])
def test_k_must_leave_classes_out(run, k: int):
    result = run(top_k_agreement, REFERENCE, REFERENCE.copy(), check={"k": k})
    assert result.status == "failed"
    assert f"k={k} is not below the model's 4 classes" in result.reason
