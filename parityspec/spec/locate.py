"""Turning pydantic errors into located, hinted problems."""

from __future__ import annotations

import difflib
import types
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Tag, ValidationError

from parityspec.errors import Problem
from parityspec.spec.base import CALLABLE_PATTERN, NAME_PATTERN
from parityspec.spec.yaml_source import Path_, SourceMap, dotted

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

Loc = tuple[int | str, ...]
"""Where pydantic found an error: fields, list indexes, union tags; `Path_` is the document's."""

# Pydantic's type errors, by what the spec wanted instead.
EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
}
# The string patterns of `base.py`: what each one wants, and a hint that says it in words.
PATTERNS = {
    NAME_PATTERN: ("a name", "a name starts with a letter, then letters, digits, `_`, `.` or `-`"),
    CALLABLE_PATTERN: ("`file.py:function`", "name the function after a colon: `models.py:build`"),
}


def did_you_mean(word: str | int, choices: list[str] | set[str]) -> str | None:
    matches = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    return f"did you mean {matches[0]!r}?" if matches else None


def problems_from(
    error: ValidationError, root: type[BaseModel], data: Any, shown: str, source: SourceMap
) -> list[Problem]:
    problems: list[Problem] = []
    for item in error.errors():
        loc = item["loc"]
        path = _data_path(loc[:-1] if _is_key_error(loc, root) else loc, data, root)
        problem = _problem(item, path, root, data, shown, source)
        if problem not in problems:  # a short list reports each missing item alike
            problems.append(problem)
    return problems


def _problem(
    item: ErrorDetails,
    path: Path_,
    root: type[BaseModel],
    data: Any,
    shown: str,
    source: SourceMap,
) -> Problem:
    kind, ctx, loc = item["type"], item.get("ctx") or {}, item["loc"]
    key = dotted(path)
    if kind == "extra_forbidden":
        allowed = _fields(_type_at(root, loc[:-1]))
        hint = did_you_mean(path[-1], allowed) or (
            f"allowed keys: {', '.join(sorted(allowed))}" if allowed else None
        )
        line, col = source.locate(path, key=True)
        return Problem(shown, line, col, key, f"unknown key {path[-1]!r}", hint)
    if _is_key_error(loc, root):  # a mapping key that is not a valid name
        message, hint = _message(item, path, root, data)
        return Problem(shown, *source.locate(path, key=True), key, message, hint)
    if kind == "union_tag_invalid":
        what = ctx.get("discriminator", "").strip("'")
        tags = _tags(root, loc)
        message = f"unknown {what} {ctx.get('tag')!r}"
        hint = did_you_mean(ctx.get("tag", ""), tags) or f"one of: {', '.join(tags)}"
        return Problem(shown, *source.locate((*path, what)), f"{key}.{what}", message, hint)
    message, hint = _message(item, path, root, data)
    return Problem(shown, *source.locate(path), key, message, hint)


def _message(
    item: ErrorDetails, path: Path_, root: type[BaseModel], data: Any
) -> tuple[str, str | None]:
    kind, ctx, loc, given = item["type"], item.get("ctx") or {}, item["loc"], item["input"]
    if kind == "missing" and isinstance(loc[-1], int):  # a fixed-length list, too short
        size = len(get_args(_type_at(root, loc[:-1])))
        return f"expected {size} items, got {len(given)}", None
    if kind == "missing":
        return "required key is missing", _misspelt(path, _type_at(root, loc[:-1]), data)
    if kind == "union_tag_not_found":
        what = ctx.get("discriminator", "").strip("'")
        return f"missing the `{what}` key", f"one of: {', '.join(_tags(root, loc))}"
    if kind == "literal_error":
        return _literal(path, str(ctx.get("expected", "")), given)
    if kind in EXPECTED:
        return f"expected {EXPECTED[kind]}, got {_shown(given)}", None
    if kind == "string_pattern_mismatch" and ctx.get("pattern") in PATTERNS:
        what, hint = PATTERNS[ctx["pattern"]]
        return f"expected {what}, got {_shown(given)}", hint
    if kind in ("too_short", "too_long"):
        bound = "at least" if kind == "too_short" else "at most"
        limit = ctx.get("min_length", ctx.get("max_length"))
        return f"expected {bound} {limit} item(s), got {ctx.get('actual_length')}", None
    message = item["msg"].removeprefix("Value error, ").removeprefix("Input ")
    message = message[0].lower() + message[1:]
    if not isinstance(given, dict | list) and kind != "value_error":
        message += f", got {_shown(given)}"
    return message, None


def _literal(path: Path_, expected: str, given: Any) -> tuple[str, str]:
    options = [o.strip(" '") for o in expected.replace(" or ", ",").split(",")]
    if path == ("parityspec",):
        return f"unsupported spec version {_shown(given)}", f"write `parityspec: {expected}`"
    return f"{_shown(given)} is not allowed", (
        did_you_mean(str(given), options) or f"one of: {expected}"
    )


def _misspelt(path: Path_, parent_type: Any, data: Any) -> str | None:
    """A hint naming an unknown key beside a missing one that looks like it."""
    parent = _value_at(data, path[:-1])
    if not isinstance(parent, dict):
        return None
    unknown = [k for k in parent if isinstance(k, str) and k not in _fields(parent_type)]
    matches = difflib.get_close_matches(str(path[-1]), unknown, n=1, cutoff=0.6)
    return f"is {matches[0]!r} a misspelling of it?" if matches else None


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _value_at(data: Any, path: Path_) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _data_path(loc: Loc, data: Any, root: type[BaseModel]) -> Path_:
    """The loc in terms of the document: union tags and missing list items dropped."""
    path: list[str | int] = []
    current, tp = data, _unwrap(root)
    for part in loc:
        if isinstance(tp, dict):  # a tagged union: this part is the tag, not a key
            tp = _unwrap(tp.get(part))
            continue
        tp = _unwrap(_step(tp, part))
        in_dict = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and part < len(current)
        if in_dict or in_list:
            path.append(part)
            current = current[part]
        elif isinstance(current, dict):  # a key that is missing or unknown: the last part
            path.append(part)
            current = None
    return tuple(path)


def _is_key_error(loc: Loc, root: type[BaseModel]) -> bool:
    """Pydantic ends the loc of a bad mapping key with `[key]`."""
    return loc[-1:] == ("[key]",) and get_origin(_type_at(root, loc[:-2])) is dict


def _fields(tp: Any) -> set[str]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return {f.alias or name for name, f in tp.model_fields.items()}
    return set()


def _tags(root: type[BaseModel], loc: Loc) -> list[str]:
    members = _type_at(root, loc)
    return sorted(members) if isinstance(members, dict) else []


def _type_at(root: type[BaseModel], loc: Loc) -> Any:
    """The unwrapped type at `loc`: a model, a {tag: model} dict for a tagged union, ..."""
    current: Any = root
    for part in loc:
        current = _step(current, part)
        if current is None:
            return None
    return _unwrap(current)


def _step(current: Any, part: Any) -> Any:
    current = _unwrap(current)
    if isinstance(current, dict):  # tagged union members
        return current.get(part)
    if isinstance(current, type) and issubclass(current, BaseModel):
        for name, info in current.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
        return None
    origin = get_origin(current)
    if origin is dict:
        return get_args(current)[1]
    if origin in (list, tuple):
        return get_args(current)[0]
    return None


def _unwrap(tp: Any) -> Any:
    if get_origin(tp) is Annotated:
        return _unwrap(get_args(tp)[0])
    if get_origin(tp) in (Union, types.UnionType):
        members = [a for a in get_args(tp) if a is not type(None)]
        tagged = {_tag(m): _unwrap(m) for m in members if _tag(m)}
        if tagged:
            return tagged
        return _unwrap(members[0]) if len(members) == 1 else tp
    return tp


def _tag(tp: Any) -> str | None:
    if get_origin(tp) is Annotated:
        for meta in get_args(tp)[1:]:
            if isinstance(meta, Tag):
                return meta.tag
    return None
