"""Turning pydantic errors into located, hinted problems."""

from __future__ import annotations

import difflib
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Tag, ValidationError

from parityspec.errors import Problem
from parityspec.spec.yaml_source import SourceMap, dotted


def did_you_mean(word: str, choices: list[str] | set[str]) -> str | None:
    matches = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    return f"did you mean {matches[0]!r}?" if matches else None


def problems_from(
    error: ValidationError, root: type[BaseModel], data: Any, shown: str, source: SourceMap
) -> list[Problem]:
    problems = []
    for item in error.errors():
        path = _data_path(item["loc"], data)
        problems.append(_problem(item, path, root, shown, source))
    return problems


def _problem(item: dict, path: tuple, root, shown: str, source: SourceMap) -> Problem:
    kind, ctx = item["type"], item.get("ctx") or {}
    key = dotted(path)
    if kind == "extra_forbidden":
        allowed = _fields_at(root, item["loc"][:-1])
        line, col = source.locate(path, key=True)
        hint = did_you_mean(path[-1], allowed) or (
            f"allowed keys: {', '.join(sorted(allowed))}" if allowed else None
        )
        return Problem(shown, line, col, key, f"unknown key {path[-1]!r}", hint)
    line, col = source.locate(path)
    if kind == "missing":
        return Problem(shown, line, col, key, "required key is missing", None)
    if kind == "union_tag_invalid":
        tags = [t.strip(" '") for t in ctx.get("expected_tags", "").split(",")]
        what = ctx.get("discriminator", "").strip("'")
        return Problem(
            shown,
            *source.locate((*path, what)),
            f"{key}.{what}",
            f"unknown {what} {ctx.get('tag')!r}",
            did_you_mean(ctx.get("tag", ""), tags) or f"one of: {', '.join(tags)}",
        )
    if kind == "union_tag_not_found":
        what = ctx.get("discriminator", "").strip("'")
        return Problem(shown, line, col, key, f"missing the `{what}` key", None)
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        options = [o.strip(" '") for o in expected.replace(" or ", ",").split(",")]
        given = item.get("input")
        return Problem(
            shown,
            line,
            col,
            key,
            f"{given!r} is not allowed",
            did_you_mean(str(given), options) or f"one of: {expected}",
        )
    message = item["msg"].removeprefix("Value error, ")
    return Problem(shown, line, col, key, message[0].lower() + message[1:], None)


def _data_path(loc: tuple, data: Any) -> tuple:
    """The loc in terms of the document: union tags and validator names dropped."""
    path: list = []
    current = data
    for part in loc:
        if (isinstance(current, dict) and part in current) or (
            isinstance(current, list) and isinstance(part, int) and part < len(current)
        ):
            path.append(part)
            current = current[part]
        elif isinstance(current, dict) and isinstance(part, str) and "[" not in part:
            tag_values = {v for v in current.values() if isinstance(v, str)}
            if part not in tag_values:  # a key that is missing or unknown: the last part
                path.append(part)
                current = None
    return tuple(path)


def _fields_at(root: type[BaseModel], loc: tuple) -> set[str]:
    current: Any = root
    for part in loc:
        current = _step(current, part)
        if current is None:
            return set()
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return {f.alias or name for name, f in current.model_fields.items()}
    return set()


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
