"""Backend matrices: a backend's `matrix:` swept into one backend per combination.

A matrix field is an axis owned by its backend. A backend made from another (`from:`)
inherits its source's axes; a check spans the axes of both its backends, and a combination
of it pairs the two backends that agree on the axes they share. Ids are stable:
`int8[method=static,per_channel=true]`, the values in the order written, so adding a value
leaves every other combination's id, and its steps' cache keys, as they were. An axis is
labelled by its field, or `backend.field` where two axes of one id share a field.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from parityspec.spec.composition import BACKENDS, Spec
from parityspec.spec.locate import did_you_mean
from parityspec.spec.models import BackendSpecBase

MAX_COMBINATIONS = 64
"""The most combinations one backend or one check may expand to."""
# Swept, these would change what a backend is rather than how it is made.
FIXED = ("kind", "from", "matrix", "exclude")

Found = tuple[tuple, str, str | None]
"""A problem: (path in the document, message, hint)."""


@dataclass(frozen=True)
class Axis:
    backend: str
    field: str
    """As the spec writes it (`from`, not `from_`)."""


Combination = dict[Axis, Any]


@dataclass(frozen=True)
class SweptCheck:
    """One check of the spec and the checks it expanded to."""

    origin: str
    index: int
    """Its position in the spec's `checks`."""
    axes: tuple[str, ...]
    """The labels of its axes, in order."""
    rows: tuple[tuple[str, dict[str, Any]], ...]
    """(expanded id, label -> value) for each combination."""


@dataclass(frozen=True)
class Sweep:
    """What the expansion made, for the report and for locating problems."""

    document: Spec
    """The spec as written, with its matrices."""
    backends: Mapping[str, tuple[str, dict[str, int]]]
    """Expanded name -> (the spec's backend, index of each of its own fields' values)."""
    checks: tuple[SweptCheck, ...]
    check_origins: tuple[int, ...]
    """For each check of the expanded spec, its index in the spec's `checks`."""

    def document_path(self, path: tuple) -> tuple:
        """A path in the expanded spec as a path in the document."""
        if path[:1] == ("backends",) and len(path) > 1 and path[1] in self.backends:
            origin, indexes = self.backends[path[1]]
            rest = path[2:]
            if rest and rest[0] in indexes:
                return ("backends", origin, "matrix", rest[0], indexes[rest[0]])
            return ("backends", origin, *rest)
        if path[:1] == ("checks",) and len(path) > 1 and isinstance(path[1], int):
            return ("checks", self.check_origins[path[1]], *path[2:])
        return path


def sweep_of(spec: Spec) -> Sweep | None:
    """The expansion that made `spec`, if its backends had matrices."""
    sweep = spec._sweep
    return sweep if isinstance(sweep, Sweep) else None


def show(value: Any) -> str:
    """A value as an id writes it: `true`, `static`, `0.5`, `a+b` for a list."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "+".join(show(v) for v in value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _same(value: Any) -> str:
    """Equality as YAML means it: `1` is not `true`, `1` is not `1.0`."""
    return json.dumps([type(value).__name__, value], sort_keys=True, default=str)


def _fields(kind: str) -> dict[str, str]:
    """The fields of a backend kind, as written -> as named in the model."""
    module = BACKENDS.get(kind)
    if module is None:
        return {}
    return {info.alias or name: name for name, info in module.Spec.model_fields.items()}


# --- Before the models: a swept field takes its first value, so the backend validates ---


def fill_swept(data: Any) -> tuple[Any, set[tuple[str, str]], list[Found]]:
    """The document with each swept field of a backend set to its first value (a required
    field, or one a validator pairs with another, may be swept); the (backend, field) pairs
    filled, and fields both set and swept."""
    backends = data.get("backends") if isinstance(data, dict) else None
    if not isinstance(backends, dict):
        return data, set(), []
    filled: set[tuple[str, str]] = set()
    found: list[Found] = []
    out = dict(backends)
    for name, raw in backends.items():
        matrix = raw.get("matrix") if isinstance(raw, dict) else None
        if not isinstance(matrix, dict):
            continue
        fields = _fields(str(raw.get("kind")))
        first = {}
        for field, values in matrix.items():
            if field not in fields or field in FIXED or not isinstance(values, list) or not values:
                continue  # reported once the models have validated the rest
            if field in raw:
                found.append(
                    (
                        ("backends", name, "matrix", field),
                        f"{field!r} is both set ({field}: {show(raw[field])}) and swept",
                        f"remove `{field}:` or its matrix entry",
                    )
                )
                continue
            first[field] = values[0]
            filled.add((name, field))
        out[name] = {**raw, **first}
    return {**data, "backends": out}, filled, found


# --- After the models: what is wrong with a matrix ---


def matrix_problems(spec: Spec) -> Iterator[Found]:
    """Each problem of the spec's matrices; the expansion runs only when there is none."""
    found = [p for n, b in spec.backends.items() for p in _backend_problems(n, b)]
    if found:  # the combinations of a bad matrix mean nothing
        yield from found
        return
    for name, backend in spec.backends.items():
        yield from _combination_problems(name, backend)
    try:
        combos = _combinations(spec)
    except _TooMany as many:
        yield many.found
        return
    for name, backend in spec.backends.items():
        origin = _source(backend)
        if origin in combos and combos[origin] != [{}] and "from" not in _fields(backend.kind):
            yield (
                ("backends", name, "kind"),
                f"backend kind {backend.kind!r} names its source in no `from` field, so it "
                f"cannot follow the matrix of {origin!r}",
                "make it from a backend without a matrix",
            )
    for index, check in enumerate(spec.checks):
        if not all(b in combos for b in check.between):
            continue  # an unknown backend: reported by the semantic rules
        count = sum(1 for _ in _check_rows(check.between, combos))
        if count > MAX_COMBINATIONS:
            yield (
                ("checks", index, "between"),
                f"check {check.id!r} expands to {count} combinations, more than the limit "
                f"of {MAX_COMBINATIONS}",
                "exclude combinations, or split the sweep into several specs",
            )


def _backend_problems(name: str, backend: BackendSpecBase) -> Iterator[Found]:
    base = ("backends", name)
    if backend.exclude is not None and not backend.matrix:
        yield (*base, "exclude"), "exclude without a matrix", "add `matrix:`, or remove it"
    if backend.matrix is None:
        return
    fields = _fields(backend.kind)
    swept = [f for f in backend.matrix if f in fields and f not in FIXED]
    if not backend.matrix:
        yield (*base, "matrix"), "the matrix is empty", "name a field and its values"
    for field, values in backend.matrix.items():
        path = (*base, "matrix", field)
        if field in FIXED:
            yield path, f"{field!r} cannot be swept", "sweep how a backend is made, not what"
        elif field not in fields:
            usable = sorted(set(fields) - set(FIXED))
            yield (
                path,
                f"backend kind {backend.kind!r} has no field {field!r}",
                did_you_mean(field, usable) or f"its fields: {', '.join(usable)}",
            )
        elif not values:
            yield path, "no values to sweep", f"list at least one value of {field}"
        else:
            yield from _value_problems(backend, field, values, path)
    if len(swept) == len(backend.matrix) and all(backend.matrix.values()):
        yield from _exclude_problems(backend, base)


def _combination_problems(name: str, backend: BackendSpecBase) -> Iterator[Found]:
    """Values valid one by one may still be refused together (a validator of two fields)."""
    for combo in _own(backend, name) if backend.matrix else ():
        try:
            _validated(backend, {a.field: v for a, v in combo.items()})
        except ValidationError as error:
            yield (
                ("backends", name, "matrix"),
                f"the combination {_named(name, combo)[0]} is refused: {_first_error(error)}",
                "exclude it, or change the values",
            )


def _value_problems(
    backend: BackendSpecBase, field: str, values: list[Any], path: tuple
) -> Iterator[Found]:
    shown: dict[str, int] = {}
    for index, value in enumerate(values):
        if show(value) in shown:
            yield (
                (*path, index),
                f"{show(value)!r} is listed twice (also item {shown[show(value)]})",
                "list each value once",
            )
            continue
        shown[show(value)] = index
        try:
            _validated(backend, {field: value})
        except ValidationError as error:
            yield (*path, index), f"{show(value)!r}: {_first_error(error)}", _allowed(error)


def _exclude_problems(backend: BackendSpecBase, base: tuple) -> Iterator[Found]:
    matrix = backend.matrix or {}
    for index, entry in enumerate(backend.exclude or []):
        path = (*base, "exclude", index)
        if not entry:
            yield path, "an empty exclude matches every combination", "name a field and a value"
        for field, value in entry.items():
            if field not in matrix:
                yield (
                    (*path, field),
                    f"exclude names {field!r}, which the matrix does not sweep",
                    did_you_mean(field, set(matrix)) or f"swept: {', '.join(matrix)}",
                )
            elif _same(value) not in {_same(v) for v in matrix[field]}:
                yield (
                    (*path, field),
                    f"exclude matches nothing: {show(value)!r} is not among the values of {field}",
                    f"its values: {', '.join(show(v) for v in matrix[field])}",
                )
    if backend.exclude and not list(_own(backend, "")):
        yield (*base, "exclude"), "exclude removes every combination", "exclude fewer"


def _validated(backend: BackendSpecBase, values: dict[str, Any]) -> BaseModel:
    """The backend with these field values, validated by its kind's model."""
    raw = backend.model_dump(mode="json", by_alias=True, exclude_unset=True)
    raw = {k: v for k, v in raw.items() if k not in ("matrix", "exclude")}
    return type(backend).model_validate({**raw, "kind": backend.kind, **values})


def _first_error(error: ValidationError) -> str:
    item = error.errors()[0]
    message = item["msg"].removeprefix("Value error, ")
    return message[0].lower() + message[1:]


def _allowed(error: ValidationError) -> str:
    expected = (error.errors()[0].get("ctx") or {}).get("expected")
    return f"one of: {expected}" if expected else "each value must be valid for the field"


# --- The expansion ---


class _TooMany(Exception):
    def __init__(self, found: Found):
        self.found = found


def _own(backend: BackendSpecBase, name: str) -> Iterator[Combination]:
    """The combinations of the backend's own matrix, in order, without the excluded."""
    matrix = backend.matrix or {}
    fields = list(matrix)
    for values in itertools.product(*(matrix[f] for f in fields)):
        chosen = dict(zip(fields, values, strict=True))
        if not any(_matches(entry, chosen) for entry in backend.exclude or []):
            yield {Axis(name, f): v for f, v in chosen.items()}


def _matches(entry: dict[str, Any], chosen: dict[str, Any]) -> bool:
    return all(f in chosen and _same(chosen[f]) == _same(v) for f, v in entry.items())


def _source(backend: BackendSpecBase) -> str | None:
    module = BACKENDS.get(backend.kind)
    return module.source(backend) if module else None


def _combinations(spec: Spec) -> dict[str, list[Combination]]:
    """Each backend's combinations: its source's, times its own."""
    done: dict[str, list[Combination]] = {}

    def of(name: str, trail: tuple[str, ...]) -> list[Combination]:
        if name in done:
            return done[name]
        backend = spec.backends[name]
        origin = _source(backend)
        inherited: list[Combination] = [{}]
        if origin in spec.backends and origin not in trail:  # a loop: reported elsewhere
            inherited = of(origin, (*trail, name))
        combos = [{**up, **own} for up in inherited for own in _own(backend, name)]
        if len(combos) > MAX_COMBINATIONS:
            raise _TooMany(
                (
                    ("backends", name, "matrix" if backend.matrix else "from"),
                    f"backend {name!r} expands to {len(combos)} combinations, more than the "
                    f"limit of {MAX_COMBINATIONS}",
                    "exclude combinations, or split the sweep into several specs",
                )
            )
        done[name] = combos
        return combos

    for name in spec.backends:
        of(name, ())
    return done


def _check_rows(
    between: list[str], combos: dict[str, list[Combination]]
) -> Iterator[tuple[Combination, Combination]]:
    """The pairs of the two backends' combinations that agree on their shared axes."""
    for left in combos[between[0]]:
        for right in combos[between[1]]:
            shared = left.keys() & right.keys()
            if all(_same(left[a]) == _same(right[a]) for a in shared):
                yield left, right


def _labels(axes: list[Axis]) -> dict[Axis, str]:
    counts: dict[str, int] = {}
    for axis in axes:
        counts[axis.field] = counts.get(axis.field, 0) + 1
    return {a: a.field if counts[a.field] == 1 else f"{a.backend}.{a.field}" for a in axes}


def _named(name: str, combo: Combination) -> tuple[str, dict[str, Any]]:
    if not combo:
        return name, {}
    labels = _labels(list(combo))
    values = {labels[a]: v for a, v in combo.items()}
    return f"{name}[{','.join(f'{k}={show(v)}' for k, v in values.items())}]", values


def expand(spec: Spec) -> Spec:
    """One backend per combination and one check per pair of them; `spec` itself when no
    backend has a matrix. Call it on a spec without `matrix_problems`."""
    if not any(b.matrix for b in spec.backends.values()):
        return spec
    combos = _combinations(spec)
    names = {n: {_key(c): _named(n, c)[0] for c in combos[n]} for n in spec.backends}
    backends: dict[str, BackendSpecBase] = {}
    origins: dict[str, tuple[str, dict[str, int]]] = {}
    for name, backend in spec.backends.items():
        for combo in combos[name]:
            expanded = names[name][_key(combo)]
            backends[expanded] = _backend(backend, name, combo, names)
            origins[expanded] = (name, _value_indexes(backend, name, combo))
    checks, swept = [], []
    for index, check in enumerate(spec.checks):
        rows = []
        for left, right in _check_rows(check.between, combos):
            check_id, values = _named(check.id, {**left, **right})
            between = [names[check.between[0]][_key(left)], names[check.between[1]][_key(right)]]
            checks.append(check.model_copy(update={"id": check_id, "between": between}))
            rows.append((check_id, values))
        axes = tuple(rows[0][1]) if rows else ()
        swept.append(SweptCheck(check.id, index, axes, tuple(rows)))
    out = spec.model_copy(update={"backends": backends, "checks": checks})
    out._sweep = Sweep(spec, origins, tuple(swept), tuple(c.index for c in swept for _ in c.rows))
    return out


def _key(combo: Combination) -> str:
    return json.dumps(
        [[a.backend, a.field, _same(v)] for a, v in combo.items()], separators=(",", ":")
    )


def _backend(
    backend: BackendSpecBase, name: str, combo: Combination, names: dict[str, dict[str, str]]
) -> BackendSpecBase:
    """The backend with its own axes' values, made from its source's matching combination."""
    own = {a.field: v for a, v in combo.items() if a.backend == name}
    made = _validated(backend, own) if own else backend.model_copy(update={"matrix": None})
    origin = _source(backend)
    if origin is None or origin not in names:
        return made  # type: ignore[return-value]
    inherited = {a: v for a, v in combo.items() if a.backend != name}
    source_field = _fields(backend.kind)["from"]
    return made.model_copy(update={source_field: names[origin][_key(inherited)]})  # type: ignore[return-value]


def _value_indexes(backend: BackendSpecBase, name: str, combo: Combination) -> dict[str, int]:
    matrix = backend.matrix or {}
    return {
        a.field: [_same(v) for v in matrix[a.field]].index(_same(value))
        for a, value in combo.items()
        if a.backend == name
    }
