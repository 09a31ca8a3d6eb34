"""The published JSON Schema, generated from the pydantic models.

The committed file (`schema --write`, `schema --check`) covers the built-in backend kinds and
check types only, so an installed plugin never makes it stale; printing the schema covers
every registered one and names the plugins.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from copy import copy
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any, Literal, TypeVar, cast, get_args, get_origin

from pydantic import BaseModel, create_model
from pydantic.fields import FieldInfo

from parityspec.backends import BACKENDS
from parityspec.backends.base import BackendModule
from parityspec.checks import CHECKS
from parityspec.checks.base import CheckModule
from parityspec.report.formats import FORMATS
from parityspec.spec.models import TOLERANCES, ReportSpec, Spec, _tagged_union
from parityspec.spec.profiles import ToleranceRegistry

SCHEMA_FILE = "schemas/parityspec.schema.json"
SCHEMA_ID = "https://parityspec.dev/schemas/parityspec.schema.json"
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Registries:
    """The backend kinds, check types and report formats a schema or reference covers, and
    what they assemble: the tolerance fields and profile model, the spec model."""

    backends: Mapping[str, BackendModule]
    checks: Mapping[str, CheckModule]
    tolerances: ToleranceRegistry
    spec: type[Spec]
    report: type[ReportSpec]
    plugins: tuple[str, ...]
    """The plugins covered, as `check always_close (its.module)`."""


@cache
def registries(*, plugins: bool) -> Registries:
    """Every registered backend, check and format, or (`plugins=False`) the built-in ones."""
    modules = {
        "backend": {k: _module(m) for k, m in BACKENDS.items()},
        "check": {t: _module(m) for t, m in CHECKS.items()},
        "format": {f: r.render.__module__ for f, r in FORMATS.items()},
    }
    named = tuple(
        f"{what} {name} ({module})"
        for what, registry in modules.items()
        for name, module in registry.items()
        if not _builtin(module)
    )
    if plugins or not named:
        return Registries(BACKENDS, CHECKS, TOLERANCES, Spec, ReportSpec, named if plugins else ())
    backends = {k: m for k, m in BACKENDS.items() if _builtin(modules["backend"][k])}
    checks = {t: m for t, m in CHECKS.items() if _builtin(modules["check"][t])}
    formats = tuple(f for f, module in modules["format"].items() if _builtin(module))
    tolerances = ToleranceRegistry({t: m.Spec.TOLERANCES for t, m in checks.items()})
    report = _model(ReportSpec, formats=_swapped(ReportSpec, "formats", Literal[formats]))
    spec = _model(
        Spec,
        backends=_swapped(Spec, "backends", _tagged_union(backends, "kind")),
        checks=_swapped(Spec, "checks", _tagged_union(checks, "type")),
        profiles=_swapped(Spec, "profiles", tolerances.profile),
        report=(report, copy(Spec.model_fields["report"])),
    )
    return Registries(backends, checks, tolerances, spec, report, ())


def json_schema(*, plugins: bool = False) -> dict[str, Any]:
    covered = registries(plugins=plugins)
    schema = covered.spec.model_json_schema(by_alias=True, mode="validation")
    if covered.plugins:
        schema["description"] += f" With the plugins {', '.join(covered.plugins)}."
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def schema_text(*, plugins: bool = False) -> str:
    """The schema as committed (`plugins=False`), or of every registered backend and check."""
    text = json.dumps(json_schema(plugins=plugins), indent=2, sort_keys=True, ensure_ascii=False)
    return text + "\n"


def _module(registered: object) -> str:
    """The name of a registered module: the registry protocols do not declare it."""
    return cast(ModuleType, registered).__name__


def _builtin(module: str) -> bool:
    return module.startswith("parityspec.")


def _model(base: type[M], **fields: Any) -> type[M]:
    """`base` with `fields` replaced, under the same name (the schema's `$defs` keys)."""
    return create_model(
        base.__name__, __base__=base, __doc__=base.__doc__, __module__=base.__module__, **fields
    )


def _swapped(model: type[BaseModel], field: str, member: Any) -> tuple[Any, FieldInfo]:
    """`model`'s `field` (a map or list of registry members) with its member type replaced."""
    info = model.model_fields[field]
    args = get_args(info.annotation)
    origin: Any = get_origin(info.annotation)
    return origin[(*args[:-1], member)], copy(info)
