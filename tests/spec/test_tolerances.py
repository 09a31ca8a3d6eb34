"""Checks own their tolerances: each check module declares its fields and their built-in
values; profiles, overrides and their resolution are assembled from the registered checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import ValidationError

from parityspec.api import RunOptions, prepare
from parityspec.backends.context import RunContext
from parityspec.checks import CHECKS, output_parity, probability_parity
from parityspec.checks.base import CheckSpecBase
from parityspec.run.steps import check_tolerances
from parityspec.spec.composition import TOLERANCES, Profile
from parityspec.spec.load import load_spec
from parityspec.spec.profiles import (
    BUILTIN_PROFILES,
    CheckTolerances,
    Fraction,
    NonNegative,
    ToleranceConflict,
    ToleranceRegistry,
    resolve_tolerances,
    tolerance,
)
from tests.conftest import REPO

OVERRIDES_SPEC = REPO / "tests" / "data" / "valid" / "profiles_and_overrides.yaml"
# The built-in values as they were when one closed model held them all: (strict, default,
# lenient) per field. Moving them into the checks changed none.
BUILTIN_VALUES = {
    "abs_tol": (0.01, 0.04, 0.08),
    "mean_tol": (0.005, 0.01, 0.02),
    "atol": (1e-6, 1e-5, 1e-3),
    "rtol": (1e-5, 1e-4, 1e-2),
    "max_violation_fraction": (0.0, 0.0, 1e-4),
    "layer_tol": (1e-5, 1e-4, 1e-2),
    "min_label_agreement": (1.0, 0.999, 0.99),
    "max_flip_rate": (0.0, 0.001, 0.01),
    "flip_margin": (0.01, 0.01, 0.02),
    "max_metric_drop": (0.001, 0.005, 0.01),
}
# probability_parity's optional gates (issue 16.7): off but in lenient, JS there.
PROBABILITY_GATES_OFF = dict.fromkeys(
    ("max_kl_divergence", "max_js_divergence", "max_log_loss_delta"), None
)
PROBABILITY_GATES_LENIENT = {
    "max_kl_divergence": None,
    "max_js_divergence": 0.0025,
    "max_log_loss_delta": None,
}
BUILTIN_CHECKS = {t: m for t, m in CHECKS.items() if m.__name__.startswith("parityspec.")}


def _declared(checks: dict[str, Any]) -> dict[str, type[CheckTolerances]]:
    return {t: m.Spec.TOLERANCES for t, m in checks.items()}


def test_builtin_profile_values_are_unchanged():
    fields = ToleranceRegistry(_declared(BUILTIN_CHECKS)).fields
    values = {n: tuple(fields[n].values.value(p) for p in BUILTIN_PROFILES) for n in BUILTIN_VALUES}
    assert values == BUILTIN_VALUES


def test_layer_tol_has_one_declaration_read_by_the_three_drift_checks():
    assert TOLERANCES.fields["layer_tol"].checks == ("layer_drift", "tensor_drift", "step_drift")


def test_the_profile_model_has_every_registered_field():
    assert set(Profile.model_fields) == {"extends", "description", *TOLERANCES.fields}


@pytest.mark.parametrize("check_type", sorted(CHECKS))
def test_a_check_accepts_its_own_tolerances_and_no_other(check_type: str):
    spec = CHECKS[check_type].Spec
    base = {"id": "c", "type": check_type, "between": ["a", "b"]}
    for name, field in TOLERANCES.fields.items():
        # An optional gate off in every built-in profile still takes a value of its own.
        values = (field.values.value(p) for p in BUILTIN_PROFILES)
        value = next((v for v in values if v is not None), 0.5)
        if check_type in field.checks:
            assert spec.model_validate({**base, name: value}).tolerance_overrides() == {name: value}
        else:
            with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
                spec.model_validate({**base, name: value})


def test_a_check_receives_its_own_tolerances_resolved():
    """Profile chain, then the check's own fields; another check's fields stay out."""
    loaded = load_spec(OVERRIDES_SPEC, check_files=False)
    ctx = RunContext(loaded.spec, loaded.directory, Path("out"), Path("work"))
    resolved = {c.id: check_tolerances(ctx, c) for c in loaded.spec.checks}
    assert {i: t.model_dump() for i, t in resolved.items()} == {
        # strict, built in
        "onnx-parity": {"abs_tol": 0.01, "mean_tol": 0.005, **PROBABILITY_GATES_OFF},
        # the check's own fields over its profile `int8` (which sets abs_tol 0.1); lenient,
        # which int8 extends, gates KL and JS divergence
        "int8-parity": {"abs_tol": 0.12, "mean_tol": 0.03, **PROBABILITY_GATES_LENIENT},
        # default, with the check's own field
        "int8-labels": {"min_label_agreement": 0.98},
        # int8 sets max_flip_rate; the check sets flip_margin
        "int8-flips": {"max_flip_rate": 0.02, "flip_margin": 0.05},
        # int8-metrics extends int8, which extends lenient
        "int8-metrics": {"max_metric_drop": 0.03},
    }
    assert type(resolved["int8-parity"]) is probability_parity.Tolerances


def test_the_profile_option_replaces_every_check_profile_but_not_its_own_fields():
    prepared = prepare(OVERRIDES_SPEC, RunOptions(profile="strict"))
    spec = prepared.loaded.spec
    ctx = RunContext(spec, prepared.loaded.directory, Path("out"), Path("work"))
    resolved = {c.id: check_tolerances(ctx, c).model_dump() for c in spec.checks}
    assert resolved["int8-parity"] == {"abs_tol": 0.12, "mean_tol": 0.03, **PROBABILITY_GATES_OFF}
    assert resolved["int8-metrics"] == {"max_metric_drop": 0.001}
    assert resolved["int8-flips"] == {"max_flip_rate": 0.0, "flip_margin": 0.05}


def test_per_output_tolerances_are_the_checks_own_fields_with_their_bounds():
    per_output = output_parity.OutputTolerance
    assert set(per_output.model_fields) == set(output_parity.Tolerances.model_fields)
    assert per_output.model_validate({"atol": 0.1}).tolerance_overrides() == {"atol": 0.1}
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        per_output.model_validate({"atol": -1.0})


def test_resolving_reads_only_the_fields_the_check_declares():
    profiles = {
        "mine": Profile.model_validate({"extends": "lenient", "abs_tol": 0.5, "layer_tol": 9.0})
    }
    resolved = resolve_tolerances(probability_parity.Tolerances, "mine", profiles)
    assert resolved.model_dump() == {"abs_tol": 0.5, "mean_tol": 0.02, **PROBABILITY_GATES_LENIENT}


class _Doubled(CheckTolerances):
    layer_tol: NonNegative = tolerance(
        strict=2e-5,
        default=1e-4,
        lenient=1e-2,
        doc="Per-layer / per-step checks: the largest allowed max |a - b| of one layer's output.",
    )


class _Same(CheckTolerances):
    layer_tol: NonNegative = tolerance(
        strict=1e-5,
        default=1e-4,
        lenient=1e-2,
        doc="Per-layer / per-step checks: the largest allowed max |a - b| of one layer's output.",
    )


class _Bounded(CheckTolerances):
    atol: Fraction = tolerance(
        strict=1e-6,
        default=1e-5,
        lenient=1e-3,
        doc="Outputs (regression, tensors): an element passes when |a - b| <= atol + rtol * |a|.",
    )


def test_a_shared_tolerance_declared_differently_fails_the_registry():
    with pytest.raises(ToleranceConflict) as raised:
        ToleranceRegistry({**_declared(CHECKS), "doubled": _Doubled})
    message = str(raised.value)
    assert "'layer_tol'" in message and "layer_drift" in message and "doubled" in message
    assert "values PerProfile(strict=1e-05" in message and "strict=2e-05" in message


def test_a_shared_tolerance_with_other_bounds_fails_the_registry():
    with pytest.raises(ToleranceConflict, match=r"'atol' is declared by output_parity.*type"):
        ToleranceRegistry({**_declared(CHECKS), "bounded": _Bounded})


def test_a_shared_tolerance_declared_identically_is_one_field_read_by_both():
    registry = ToleranceRegistry({**_declared(CHECKS), "same": _Same})
    assert registry.fields["layer_tol"].checks[-1] == "same"
    assert list(registry.profile.model_fields) == list(Profile.model_fields)


def test_a_tolerance_field_without_profile_values_is_refused():
    with pytest.raises(TypeError, match=r"declare tolerance fields with tolerance\("):

        class _Bare(CheckTolerances):
            abs_tol: NonNegative = 0.1


def test_a_builtin_value_outside_the_fields_bounds_is_refused():
    with pytest.raises(ValidationError, match="less than or equal to 1"):

        class _OutOfBounds(CheckTolerances):
            rate: Fraction = tolerance(strict=0.0, default=0.5, lenient=1.5, doc="A rate.")


def test_a_spec_field_named_like_one_of_its_tolerances_is_refused():
    with pytest.raises(TypeError, match="is a tolerance: declare it in _Same only"):

        class _Spec(CheckSpecBase, tolerances=_Same):
            type: Literal["x"]
            layer_tol: float = 0.1
