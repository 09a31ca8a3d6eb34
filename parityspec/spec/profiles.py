"""Tolerance profiles: the built-in ones, user profiles that extend them, resolution."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from parityspec.spec.base import Name, StrictModel

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
# Finite: an infinite tolerance would switch its gate off without saying so.
NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class Tolerances(StrictModel):
    """Every tolerance a check can read. Unset fields come from the profile extended."""

    abs_tol: NonNegative | None = None
    """Probabilities: the largest allowed |a - b| of any element."""
    mean_tol: NonNegative | None = None
    """Probabilities: the largest allowed mean |a - b| over all elements."""
    atol: NonNegative | None = None
    """Outputs (regression, tensors): an element passes when |a - b| <= atol + rtol * |a|."""
    rtol: NonNegative | None = None
    """Outputs (regression, tensors): the relative part of the element rule, scaled by |a|."""
    max_violation_fraction: Fraction | None = None
    """Outputs: the fraction of elements allowed to break the element rule."""
    layer_tol: NonNegative | None = None
    """Per-layer / per-step checks: the largest allowed max |a - b| of one layer's output."""
    min_label_agreement: Fraction | None = None
    """Labels: the smallest allowed fraction of samples with the same predicted label."""
    max_flip_rate: Fraction | None = None
    """Decision threshold: the largest allowed fraction of samples whose decision flips."""
    flip_margin: NonNegative | None = None
    """Decision threshold: samples within this distance of the threshold are counted apart."""
    max_metric_drop: NonNegative | None = None
    """Metrics: the largest allowed worsening of a task metric against the reference."""


class Profile(Tolerances):
    """A user profile: a built-in (or another user profile) with some fields overridden."""

    extends: Name = "default"
    """The profile this one starts from."""
    description: str | None = None


BUILTIN_PROFILES: dict[str, Tolerances] = {
    "strict": Tolerances(
        abs_tol=0.01,
        mean_tol=0.005,
        atol=1e-6,
        rtol=1e-5,
        max_violation_fraction=0.0,
        layer_tol=1e-5,
        min_label_agreement=1.0,
        max_flip_rate=0.0,
        flip_margin=0.01,
        max_metric_drop=0.001,
    ),
    "default": Tolerances(
        abs_tol=0.04,
        mean_tol=0.01,
        atol=1e-5,
        rtol=1e-4,
        max_violation_fraction=0.0,
        layer_tol=1e-4,
        min_label_agreement=0.999,
        max_flip_rate=0.001,
        flip_margin=0.01,
        max_metric_drop=0.005,
    ),
    "lenient": Tolerances(
        abs_tol=0.08,
        mean_tol=0.02,
        atol=1e-3,
        rtol=1e-2,
        max_violation_fraction=1e-4,
        layer_tol=1e-2,
        min_label_agreement=0.99,
        max_flip_rate=0.01,
        flip_margin=0.02,
        max_metric_drop=0.01,
    ),
}


def resolve_profile(name: str, user_profiles: dict[str, Profile]) -> Tolerances:
    """Flatten `name` through its `extends` chain. The chain is known to be acyclic."""
    if name in BUILTIN_PROFILES and name not in user_profiles:
        return BUILTIN_PROFILES[name]
    profile = user_profiles[name]
    base = resolve_profile(profile.extends, user_profiles)
    overrides = profile.model_dump(exclude_none=True, exclude={"extends", "description"})
    return base.model_copy(update=overrides)


def apply_overrides(tolerances: Tolerances, overrides: dict[str, float | None]) -> Tolerances:
    return tolerances.model_copy(update={k: v for k, v in overrides.items() if v is not None})
