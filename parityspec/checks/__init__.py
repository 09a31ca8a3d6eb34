"""Check types. A new type: one module here satisfying `CheckModule`, one line below."""

from parityspec.checks import (
    benchmark,
    input_search,
    label_agreement,
    layer_drift,
    metric_delta,
    output_parity,
    probability_parity,
    score_parity,
    step_drift,
    tensor_drift,
    threshold_flips,
    top_k_agreement,
)
from parityspec.checks.base import CheckModule
from parityspec.plugins import load_plugins

CHECKS: dict[str, CheckModule] = {
    m.TYPE: m
    for m in (
        probability_parity,
        output_parity,
        score_parity,
        label_agreement,
        threshold_flips,
        metric_delta,
        layer_drift,
        tensor_drift,
        step_drift,
        benchmark,
        top_k_agreement,
        input_search,
    )
}
CHECKS.update(load_plugins("parityspec.checks", CHECKS))
