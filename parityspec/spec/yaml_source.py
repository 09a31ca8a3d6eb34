"""Safe YAML reading that remembers where every key and value stands.

Plain `yaml.safe_load` keeps the last of duplicate keys and expands aliases without
bound; here both are errors, every tag outside YAML's core schema is refused (a
`!!python/...` tag is never executed), and each node's line and column are kept so that
errors can point at them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from parityspec.errors import Problem, SpecError

MAX_NODES = 20_000
MAX_DEPTH = 50
MAX_BYTES = 2_000_000
CORE_TAGS = {
    "tag:yaml.org,2002:" + t
    for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
}

Path_ = tuple[str | int, ...]


@dataclass
class SourceMap:
    """(line, col), 1-based, of each value and each mapping key, by path."""

    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path_, *, key: bool = False) -> tuple[int | None, int | None]:
        """The closest known position: the key itself, else its nearest ancestor."""
        table = self.keys if key else self.values
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefix in table:
                return table[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return None, None


def read_document(path: Path, shown: str) -> tuple[Any, SourceMap]:
    text = _read_text(path, shown)
    if path.suffix.lower() == ".json":
        text = text.replace("\t", " ")  # JSON allows tab indentation, YAML does not
    node = _compose(text, shown)
    if node is None:
        raise SpecError([Problem(shown, message="the spec is empty", hint=_EXAMPLE_HINT)])
    builder = _Builder(shown)
    value = builder.build(node, ())
    if builder.problems:
        raise SpecError(builder.problems)
    if not isinstance(value, dict):
        line, col = _mark(node)
        kind = "a list" if isinstance(value, list) else "a single value"
        raise SpecError(
            [
                Problem(
                    shown,
                    line,
                    col,
                    message=f"the spec is {kind}, not a mapping",
                    hint=_EXAMPLE_HINT,
                )
            ]
        )
    return value, builder.source_map


_EXAMPLE_HINT = "a spec is a mapping that starts with `parityspec: 1`"


def _read_text(path: Path, shown: str) -> str:
    if path.is_dir():
        raise SpecError([Problem(shown, message="is a directory, not a spec file")])
    if not path.exists():
        raise SpecError([Problem(shown, message="no such file")])
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise SpecError(
            [
                Problem(
                    shown,
                    message=f"spec file too large ({size} bytes)",
                    hint=f"a spec is at most {MAX_BYTES} bytes",
                )
            ]
        )
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise SpecError([Problem(shown, message="binary file, not YAML text")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise SpecError(
            [
                Problem(
                    shown,
                    line,
                    message=f"invalid UTF-8 at byte {error.start}",
                    hint="save the spec as UTF-8",
                )
            ]
        ) from error


def _compose(text: str, shown: str):
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as error:
        raise SpecError([_yaml_problem(error, shown)]) from error
    except yaml.YAMLError as error:
        raise SpecError([Problem(shown, message=f"invalid YAML: {error}")]) from error
    except RecursionError as error:
        raise SpecError(
            [
                Problem(
                    shown,
                    message="nesting too deep",
                    hint=f"a spec nests at most {MAX_DEPTH} levels",
                )
            ]
        ) from error
    documents = [d for d in documents if d is not None]
    if len(documents) > 1:
        line, col = _mark(documents[1])
        raise SpecError(
            [
                Problem(
                    shown,
                    line,
                    col,
                    message="more than one YAML document",
                    hint="keep one spec per file; remove the `---` separator",
                )
            ]
        )
    return documents[0] if documents else None


def _yaml_problem(error: yaml.MarkedYAMLError, shown: str) -> Problem:
    mark = error.problem_mark or error.context_mark
    problem = error.problem or "invalid YAML"
    hint = None
    if "\\t" in problem or "tab" in problem:
        hint = "YAML forbids tabs for indentation; use spaces"
    elif "expected" in problem and ("']'" in problem or "'}'" in problem or "flow" in problem):
        hint = "a bracket or brace is not closed"
    line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
    context = f"{error.context}: " if error.context else ""
    return Problem(shown, line, col, message=f"invalid YAML: {context}{problem}", hint=hint)


def _mark(node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    """Turns composed nodes into plain Python values, counting every expanded node."""

    def __init__(self, shown: str):
        self.shown = shown
        self.problems: list[Problem] = []
        self.source_map = SourceMap()
        self.nodes = 0
        self._scalars = yaml.SafeLoader("")

    def build(self, node, path: Path_, depth: int = 0) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            self._fail_size(node, depth)
        self.source_map.values.setdefault(path, _mark(node))
        if node.tag not in CORE_TAGS:
            self._problem(
                node,
                path,
                f"tag {node.tag!r} is not allowed",
                "specs are plain data; remove the tag",
            )
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        try:
            return self._scalars.construct_object(node, deep=True)
        except yaml.YAMLError as error:
            self._problem(node, path, f"bad value: {error}", None)
            return None

    def _mapping(self, node, path: Path_, depth: int) -> dict:
        result: dict = {}
        self._scalars.flatten_mapping(node)  # merge keys (`<<: *base`)
        for key_node, value_node in node.value:
            key = self.build(key_node, (*path, "<key>"), depth + 1)
            if not isinstance(key, str | int | float | bool) and key is not None:
                self._problem(key_node, path, "a key must be a plain value", None)
                continue
            key = str(key)
            if key in result:
                first = self.source_map.keys[(*path, key)]
                self._problem(
                    key_node,
                    (*path, key),
                    f"duplicate key (first at line {first[0]})",
                    "remove one of them: YAML keeps only one",
                )
                continue
            self.source_map.keys[(*path, key)] = _mark(key_node)
            result[key] = self.build(value_node, (*path, key), depth + 1)
        return result

    def _fail_size(self, node, depth: int) -> None:
        line, col = _mark(node)
        if depth > MAX_DEPTH:
            message, hint = "nesting too deep", f"a spec nests at most {MAX_DEPTH} levels"
        else:
            message = f"the document expands to more than {MAX_NODES} nodes"
            hint = "aliases (*name) multiply; a spec this large is almost surely an alias bomb"
        raise SpecError([Problem(self.shown, line, col, message=message, hint=hint)])

    def _problem(self, node, path: Path_, message: str, hint: str | None) -> None:
        line, col = _mark(node)
        self.problems.append(
            Problem(self.shown, line, col, key=dotted(path) or None, message=message, hint=hint)
        )


def dotted(path: Path_) -> str:
    parts = []
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts)
