"""Where the spec meets the registries: the one module of `spec/` that imports them.

The backend kinds, check types and report formats are registered by their own modules (and
by plugins); from them this module assembles the models that validate a spec file: the
discriminated unions of backends and checks, the tolerance fields and the `profiles:` model,
the report formats. Everything else in `spec/` (the semantic rules, the schema, the
reference, the loader) reaches the registries through here.

For type checkers `Spec` is `SpecBase`: code reading `spec.checks` sees `CheckSpecBase`,
and a module narrows to its own `Spec` where it needs its fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from copy import copy
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    Literal,
    TypeVar,
    Union,
    cast,
    get_args,
    get_origin,
)

from pydantic import BaseModel, Discriminator, Tag, create_model
from pydantic.fields import FieldInfo

from parityspec.backends import BACKENDS
from parityspec.backends.base import BackendModule, Needs, Offer, capabilities
from parityspec.checks import CHECKS
from parityspec.checks.base import CheckModule
from parityspec.checks.capabilities import check_capabilities
from parityspec.report.formats import FORMATS
from parityspec.spec.models import ReportSpec, SpecBase
from parityspec.spec.profiles import ProfileBase, ToleranceRegistry

__all__ = [
    "BACKENDS",
    "CHECKS",
    "FORMATS",
    "TOLERANCES",
    "Needs",
    "Offer",
    "Profile",
    "Registries",
    "Spec",
    "capabilities",
    "check_capabilities",
    "registries",
]

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Registries:
    """The backend kinds, check types and report formats a spec model covers, and what they
    assemble: the tolerance fields and profile model, the report and spec models."""

    backends: Mapping[str, BackendModule]
    checks: Mapping[str, CheckModule]
    tolerances: ToleranceRegistry
    spec: type[SpecBase]
    report: type[ReportSpec]
    plugins: tuple[str, ...]
    """The plugins covered, as `check always_close (its.module)`."""


def compose(
    backends: Mapping[str, BackendModule],
    checks: Mapping[str, CheckModule],
    formats: tuple[str, ...],
    plugins: tuple[str, ...] = (),
) -> Registries:
    """The spec models of these registries. Two checks declaring one tolerance field
    differently fail here (`ToleranceConflict`)."""
    tolerances = ToleranceRegistry({t: m.Spec.TOLERANCES for t, m in checks.items()})
    report = _model(ReportSpec, formats=_swapped(ReportSpec, "formats", Literal[formats]))
    report_field = copy(SpecBase.model_fields["report"])
    report_field.default = report()
    spec = _model(
        SpecBase,
        "Spec",
        backends=_swapped(SpecBase, "backends", _tagged_union(backends, "kind")),
        checks=_swapped(SpecBase, "checks", _tagged_union(checks, "type")),
        profiles=_swapped(SpecBase, "profiles", tolerances.profile),
        report=(report, report_field),
    )
    return Registries(backends, checks, tolerances, spec, report, plugins)


@cache
def registries(*, plugins: bool) -> Registries:
    """Every registered backend, check and format, or (`plugins=False`) the built-in ones:
    the committed schema covers those, so installing a plugin never makes it stale."""
    if plugins or not REGISTERED.plugins:
        return REGISTERED if plugins else compose(BACKENDS, CHECKS, tuple(FORMATS))
    modules = _modules()
    return compose(
        {k: m for k, m in BACKENDS.items() if _builtin(modules["backend"][k])},
        {t: m for t, m in CHECKS.items() if _builtin(modules["check"][t])},
        tuple(f for f, module in modules["format"].items() if _builtin(module)),
    )


def _modules() -> dict[str, dict[str, str]]:
    """The module of every registered backend, check and format."""
    return {
        "backend": {k: _module(m) for k, m in BACKENDS.items()},
        "check": {t: _module(m) for t, m in CHECKS.items()},
        "format": {f: r.render.__module__ for f, r in FORMATS.items()},
    }


def _plugins() -> tuple[str, ...]:
    return tuple(
        f"{what} {name} ({module})"
        for what, registry in _modules().items()
        for name, module in registry.items()
        if not _builtin(module)
    )


def _tagged_union(registry: Mapping[str, Any], tag_field: str) -> Any:
    members = tuple(Annotated[m.Spec, Tag(name)] for name, m in sorted(registry.items()))
    return Annotated[Union[members], Discriminator(tag_field)]  # noqa: UP007


def _module(registered: object) -> str:
    """The name of a registered module: the registry protocols do not declare it."""
    return cast(ModuleType, registered).__name__


def _builtin(module: str) -> bool:
    return module.startswith("parityspec.")


def _model(base: type[M], name: str | None = None, **fields: Any) -> type[M]:
    """`base` with `fields` replaced, named `name` (default: the base's, as the schema's
    `$defs` keys show it)."""
    return create_model(
        name or base.__name__,
        __base__=base,
        __doc__=base.__doc__,
        __module__=__name__,
        **fields,
    )


def _swapped(model: type[BaseModel], field: str, member: Any) -> tuple[Any, FieldInfo]:
    """`model`'s `field` (a map or list of registry members) with its member type replaced."""
    info = model.model_fields[field]
    args = get_args(info.annotation)
    origin: Any = get_origin(info.annotation)
    return origin[(*args[:-1], member)], copy(info)


REGISTERED = compose(BACKENDS, CHECKS, tuple(FORMATS), _plugins())
TOLERANCES = REGISTERED.tolerances
if TYPE_CHECKING:
    Spec = SpecBase
    Profile = ProfileBase
else:
    Spec = REGISTERED.spec
    Profile = TOLERANCES.profile
