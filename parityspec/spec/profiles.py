"""Tolerances, owned by the checks: each check type declares its fields with their values in
the built-in profiles; the profile model, user profiles (`extends:`), per-check overrides and
their resolution are assembled from those declarations.

A check module writes

    class Tolerances(CheckTolerances):
        min_label_agreement: Fraction = tolerance(
            strict=1.0, default=0.999, lenient=0.99, doc="Labels: the smallest allowed ..."
        )

    class Spec(CheckSpecBase, tolerances=Tolerances): ...

and its `run` receives a `Tolerances` with every field resolved. This module imports nothing
above `spec/`: the registries hand their declarations in (`ToleranceRegistry`).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Annotated, Any, ClassVar, Self, TypeVar

from pydantic import Field, create_model
from pydantic.fields import FieldInfo

from parityspec.spec.base import Name, StrictModel

BUILTIN_PROFILES = ("strict", "default", "lenient")
"""The built-in profiles by name; a user profile's `extends` chain ends at one of them."""

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
# Finite: an infinite tolerance would switch its gate off without saying so.
NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


@dataclass(frozen=True)
class PerProfile:
    """A tolerance's value in each built-in profile, kept in its field's metadata (pydantic
    ignores metadata it does not know). None: an optional gate that profile leaves off."""

    strict: float | None
    default: float | None
    lenient: float | None

    def value(self, profile: str) -> float | None:
        return asdict(self)[profile]


def tolerance(
    *, strict: float | None, default: float | None, lenient: float | None, doc: str
) -> Any:
    """A field of a check's `Tolerances`: its value in each built-in profile, and what it
    means (the description in the schema and the README's table). A field whose type admits
    None is an optional gate: None where a profile does not gate it."""
    info: FieldInfo = Field(description=doc)
    info.metadata.append(PerProfile(strict, default, lenient))
    return info


class CheckTolerances(StrictModel):
    """A check type's tolerances, resolved: every field set. A subclass per check type
    declares its fields with `tolerance()`; a check without tolerances uses this one."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        for name, info in cls.model_fields.items():
            if _per_profile(info) is None:
                raise TypeError(
                    f"{cls.__module__}.{cls.__qualname__}.{name}: declare tolerance fields with "
                    "tolerance(strict=..., default=..., lenient=..., doc=...)"
                )
        # A built-in value outside its field's bounds fails here, when the check is imported.
        for profile in BUILTIN_PROFILES:
            cls.builtin(profile)

    @classmethod
    def builtin(cls, profile: str) -> Self:
        """The values of the built-in `profile`."""
        infos = cls.model_fields.items()
        return cls.model_validate({n: _values(i).value(profile) for n, i in infos})

    @classmethod
    def declarations(cls) -> dict[str, ToleranceField]:
        return {n: ToleranceField.of(n, i) for n, i in cls.model_fields.items()}


class ToleranceOverrides(StrictModel):
    """A model with a check type's tolerance fields, each optional: set, it overrides the
    profile. A subclass names them with a class keyword:
    `class Spec(CheckSpecBase, tolerances=Tolerances)`."""

    TOLERANCES: ClassVar[type[CheckTolerances]] = CheckTolerances

    def __init_subclass__(
        cls, *, tolerances: type[CheckTolerances] | None = None, **kwargs: Any
    ) -> None:
        # Runs before pydantic collects the fields: the added annotations become fields.
        super().__init_subclass__(**kwargs)
        if tolerances is None:
            return
        cls.TOLERANCES = tolerances
        annotations = inspect.get_annotations(cls)
        for name, declared in tolerances.declarations().items():
            if name in annotations:
                raise TypeError(
                    f"{cls.__module__}.{cls.__qualname__}.{name} is a tolerance: declare it in "
                    f"{tolerances.__qualname__} only"
                )
            annotations[name], default = declared.optional()
            setattr(cls, name, default)
        cls.__annotations__ = annotations

    def tolerance_overrides(self) -> dict[str, Any]:
        """The tolerances set here, by name."""
        return self.model_dump(include=set(self.TOLERANCES.model_fields), exclude_none=True)


@dataclass(frozen=True)
class ToleranceField:
    """One declared tolerance field and the check types that read it."""

    name: str
    annotation: Any
    """Its type, bounds included."""
    doc: str
    values: PerProfile
    checks: tuple[str, ...] = ()

    @classmethod
    def of(cls, name: str, info: FieldInfo) -> ToleranceField:
        bounds = [m for m in info.metadata if not isinstance(m, PerProfile)]
        annotation = Annotated[(info.annotation, *bounds)] if bounds else info.annotation
        return cls(name, annotation, info.description or "", _values(info))

    def optional(self) -> tuple[Any, Any]:
        """Its type and field where it may be left unset (a profile, a check's override)."""
        return self.annotation | None, Field(default=None, description=self.doc)

    def differences(self, other: ToleranceField) -> list[str]:
        """What two declarations of one name disagree on; a shared name needs none."""
        pairs = {
            "type": (self.annotation, other.annotation),
            "values": (self.values, other.values),
            "doc": (self.doc, other.doc),
        }
        return [f"{what} {a!r} vs {b!r}" for what, (a, b) in pairs.items() if a != b]


class ToleranceConflict(TypeError):
    """Two check types declare one tolerance name differently."""


class ProfileBase(StrictModel):
    """A user profile: a built-in (or another user profile) with some fields overridden."""

    extends: Name = "default"
    """The profile this one starts from."""
    description: str | None = None

    def tolerances_set(self) -> dict[str, Any]:
        """The tolerances this profile sets, by name."""
        return self.model_dump(exclude_none=True, exclude={"extends", "description"})


class ToleranceRegistry:
    """Every tolerance field the given check types declare, one declaration per name, and the
    user `Profile` model that may set any of them. Built when the check registry is: two
    check types declaring one name differently fail here (`ToleranceConflict`)."""

    def __init__(self, declared: Mapping[str, type[CheckTolerances]]) -> None:
        self.fields: dict[str, ToleranceField] = {}
        for check_type, tolerances in declared.items():
            for name, field in tolerances.declarations().items():
                known = self.fields.get(name)
                if known is None:
                    self.fields[name] = replace(field, checks=(check_type,))
                    continue
                if differences := known.differences(field):
                    raise ToleranceConflict(
                        f"tolerance {name!r} is declared by {', '.join(known.checks)} and by "
                        f"{check_type} ({tolerances.__module__}) differently: "
                        f"{'; '.join(differences)}. A shared tolerance needs one declaration: "
                        "declare it identically, or give it another name"
                    )
                self.fields[name] = replace(known, checks=(*known.checks, check_type))
        fields: dict[str, Any] = {n: f.optional() for n, f in self.fields.items()}
        self.profile: type[ProfileBase] = create_model(
            "Profile", __base__=ProfileBase, __doc__=ProfileBase.__doc__, **fields
        )


T = TypeVar("T", bound=CheckTolerances)


def resolve_tolerances(
    tolerances: type[T],
    profile: str,
    user_profiles: Mapping[str, ProfileBase],
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """`tolerances` as `profile` sets them through its `extends` chain (known to be acyclic),
    then `overrides` (a check's own fields) over them."""
    chain: list[ProfileBase] = []
    while profile in user_profiles:
        chain.append(user_profiles[profile])
        profile = chain[-1].extends
    values = tolerances.builtin(profile).model_dump()
    for user in reversed(chain):
        values.update({k: v for k, v in user.tolerances_set().items() if k in values})
    values.update(overrides or {})
    return tolerances.model_validate(values)


def _per_profile(info: FieldInfo) -> PerProfile | None:
    return next((m for m in info.metadata if isinstance(m, PerProfile)), None)


def _values(info: FieldInfo) -> PerProfile:
    values = _per_profile(info)
    assert values is not None  # CheckTolerances refuses a field without them
    return values
