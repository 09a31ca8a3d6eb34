"""Check types. A new type: one module here satisfying `CheckModule`, one line below."""

from parityspec.checks import (
    label_agreement,
    metric_delta,
    output_parity,
    probability_parity,
    threshold_flips,
)
from parityspec.checks.base import CheckModule

CHECKS: dict[str, CheckModule] = {
    m.TYPE: m
    for m in (
        probability_parity,
        output_parity,
        label_agreement,
        threshold_flips,
        metric_delta,
    )
}
