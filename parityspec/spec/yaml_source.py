"""Safe YAML reading that remembers where every key and value stands.

Plain `yaml.safe_load` keeps the last of duplicate keys and expands aliases without
bound; here both are errors, every tag outside YAML's core schema is refused (a
`!!python/...` tag is never executed), and each node's line and column are kept so that
errors can point at them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml

from parityspec.errors import Problem, SpecError
from parityspec.loading import NotRegularFile, read_regular_file

MAX_NODES = 20_000
MAX_DEPTH = 50
MAX_BYTES = 2_000_000
YAML_TAG = "tag:yaml.org,2002:"
CORE_TAGS = {
    YAML_TAG + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
}
MAP_TAG, SEQ_TAG, MERGE_TAG = YAML_TAG + "map", YAML_TAG + "seq", YAML_TAG + "merge"
TIMESTAMP_TAG = YAML_TAG + "timestamp"
_SURROGATE = re.compile("[\ud800-\udfff]")

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
    try:
        raw = read_regular_file(path, MAX_BYTES)
    except NotRegularFile as error:
        hint = None if str(error) == "no such file" else "give the path of a spec file"
        raise SpecError([Problem(shown, message=str(error), hint=hint)]) from None
    except OSError as error:
        raise SpecError([Problem(shown, message=f"cannot read: {error.strerror}")]) from error
    if len(raw) > MAX_BYTES:
        raise SpecError(
            [
                Problem(
                    shown,
                    message=f"spec file too large (more than {MAX_BYTES} bytes)",
                    hint=f"a spec is at most {MAX_BYTES} bytes",
                )
            ]
        )
    if b"\x00" in raw:
        raise SpecError([Problem(shown, message="binary file, not YAML text")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SpecError([_utf8_problem(raw, error, shown)]) from error


def _utf8_problem(raw: bytes, error: UnicodeDecodeError, shown: str) -> Problem:
    line_start = raw.rfind(b"\n", 0, error.start) + 1
    before = raw[line_start : error.start].decode("utf-8", errors="replace")
    return Problem(
        shown,
        raw.count(b"\n", 0, error.start) + 1,
        len(before) + 1,
        message=f"invalid UTF-8 (byte 0x{raw[error.start]:02x})",
        hint="save the spec as UTF-8",
    )


class _TooLarge(Exception):
    def __init__(self, mark: yaml.Mark, too_deep: bool):
        self.mark, self.too_deep = mark, too_deep


class _Loader(yaml.SafeLoader):
    """Stops composing at the size limits: deep input would exhaust Python's stack, and a
    huge one take seconds to compose before the builder could count it."""

    depth = nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.depth += 1
        self.nodes += 1
        try:
            if self.depth > MAX_DEPTH or self.nodes > MAX_NODES:
                raise _TooLarge(self.peek_event().start_mark, self.depth > MAX_DEPTH)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


# YAML 1.1 reads `1e-5` as a string (its floats need a dot); YAML 1.2 and JSON read a
# number, and so do users writing tolerances.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _compose(text: str, shown: str) -> yaml.Node | None:
    try:
        documents = list(yaml.compose_all(text, Loader=_Loader))
    except _TooLarge as error:
        line, col = error.mark.line + 1, error.mark.column + 1
        raise SpecError([_too_large(shown, line, col, error.too_deep)]) from None
    except yaml.MarkedYAMLError as error:
        raise SpecError([_yaml_problem(error, shown)]) from error
    except yaml.reader.ReaderError as error:
        raise SpecError([_reader_problem(error, text, shown)]) from error
    except yaml.YAMLError as error:
        raise SpecError([Problem(shown, message=f"invalid YAML: {error}")]) from error
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


def _too_large(shown: str, line: int, col: int, too_deep: bool) -> Problem:
    if too_deep:
        message, hint = "nesting too deep", f"a spec nests at most {MAX_DEPTH} levels"
    else:
        message = f"more than {MAX_NODES} values, counting each alias (*name) expanded"
        hint = "a real spec is far smaller: is this an alias bomb, or the wrong file?"
    return Problem(shown, line, col, message=message, hint=hint)


# (words in PyYAML's message, hint), first match wins.
_SYNTAX_HINTS = (
    ("'\\t'", "YAML forbids tabs for indentation; use spaces"),
    ("flow sequence", "close the `[` with `]`, and separate its items with `,`"),
    ("flow mapping", "close the `{` with `}`, and separate its entries with `,`"),
    ("quoted scalar", "a quote is not closed"),
    ("mapping values are not allowed", "quote a value that contains ': '"),
    ("could not find expected ':'", "write each entry as `key: value`"),
    ("expected <block end>", "indent this line like its siblings above"),
    ("undefined alias", "define the anchor (&name) before its first use (*name)"),
    ("duplicate anchor", "give each anchor (&name) its own name"),
)


def _yaml_problem(error: yaml.MarkedYAMLError, shown: str) -> Problem:
    mark = error.problem_mark or error.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
    context = error.context or ""
    if context and error.context_mark and error.context_mark is not mark:
        where = error.context_mark
        context += f" at line {where.line + 1}, column {where.column + 1}"
    problem = error.problem or "invalid YAML"
    text = f"{context} {problem}"
    hint = next((h for words, h in _SYNTAX_HINTS if words in text), None)
    context = f"{context}: " if context else ""
    return Problem(shown, line, col, message=f"invalid YAML: {context}{problem}", hint=hint)


def _reader_problem(error: yaml.reader.ReaderError, text: str, shown: str) -> Problem:
    line = text.count("\n", 0, error.position) + 1
    col = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
    return Problem(
        shown,
        line,
        col,
        message=f"invalid YAML: control character U+{error.character:04X} is not allowed",
        hint="remove it, or write it as an escape in a double-quoted string",
    )


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _shown_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(YAML_TAG) if tag.startswith(YAML_TAG) else tag


class _Builder:
    """Turns composed nodes into plain Python values, counting every expanded node."""

    def __init__(self, shown: str):
        self.shown = shown
        self.problems: list[Problem] = []
        self.source_map = SourceMap()
        self.nodes = 0
        self._scalars = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: Path_, depth: int = 1) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            self._fail_size(node, depth)
        self.source_map.values.setdefault(path, _mark(node))
        if not self._tag_fits(node):
            self._problem(
                node,
                path,
                f"tag {_shown_tag(node.tag)!r} is not allowed here",
                "specs are plain data; remove the tag",
            )
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if node.tag == TIMESTAMP_TAG:
            return node.value  # a date stays text, as in YAML 1.2 and the JSON Schema
        try:
            value = self._scalars.construct_object(node, deep=True)
        except Exception:  # PyYAML's int(), float(), bool lookups raise what they raise
            self._problem(
                node,
                path,
                f"{node.value!r} is not a valid {_shown_tag(node.tag)}",
                "remove the tag, or fix the value",
            )
            return None
        return self._text(node, path, value) if isinstance(value, str) else value

    def _text(self, node: yaml.Node, path: Path_, value: str) -> str | None:
        """Escaped surrogate pairs (`"\\uD83D\\uDE00"`, JSON's way) become the character they
        encode; a lone surrogate is no character, and no report could be written with it."""
        if not _SURROGATE.search(value):
            return value
        units = value.encode("utf-16-le", "surrogatepass")
        try:
            return units.decode("utf-16-le")
        except UnicodeDecodeError as error:
            unit = int.from_bytes(units[error.start : error.start + 2], "little")
            key = path[-1:] == ("<key>",)
            self._problem(
                node,
                path[:-1] if key else path,
                f"lone surrogate U+{unit:04X} in a {'key' if key else 'string'}: "
                "it encodes no character",
                "write the character itself, or one escape per character (\\U0001F600)",
            )
            return None

    @staticmethod
    def _tag_fits(node: yaml.Node) -> bool:
        if isinstance(node, yaml.MappingNode):
            return node.tag == MAP_TAG
        if isinstance(node, yaml.SequenceNode):
            return node.tag == SEQ_TAG
        return node.tag in CORE_TAGS - {MAP_TAG, SEQ_TAG}

    def _mapping(self, node: yaml.MappingNode, path: Path_, depth: int) -> dict[str, Any]:
        # Merged keys (`<<: *base`) come first so that the mapping's own keys override them.
        result = self._merged(node, path, depth)
        own: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            key = self.build(key_node, (*path, "<key>"), depth + 1)
            if not isinstance(key, str | int | float | bool) and key is not None:
                self._problem(key_node, path, "a key must be a plain value", None)
                continue
            key = str(key)
            if key in own:
                first = self.source_map.keys[(*path, key)]
                self._problem(
                    key_node,
                    (*path, key),
                    f"duplicate key (first at line {first[0]}, column {first[1]})",
                    "remove one of them: YAML keeps only one",
                )
                continue
            own.add(key)
            self.source_map.keys[(*path, key)] = _mark(key_node)
            self.source_map.values[(*path, key)] = _mark(value_node)
            result[key] = self.build(value_node, (*path, key), depth + 1)
        return result

    def _merged(self, node: yaml.MappingNode, path: Path_, depth: int) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag != MERGE_TAG:
                continue
            many = isinstance(value_node, yaml.SequenceNode) and value_node.tag == SEQ_TAG
            sources = value_node.value if many else [value_node]
            for source in reversed(sources):  # of `<<: [*a, *b]`, the earlier wins
                if not isinstance(source, yaml.MappingNode):
                    self._problem(source, path, "`<<` merges only mappings", "write `<<: *name`")
                    continue
                merged.update(self.build(source, path, depth + 1) or {})
        return merged

    def _fail_size(self, node: yaml.Node, depth: int) -> NoReturn:
        line, col = _mark(node)
        raise SpecError([_too_large(self.shown, line, col, depth > MAX_DEPTH)])

    def _problem(self, node: yaml.Node, path: Path_, message: str, hint: str | None) -> None:
        line, col = _mark(node)
        self.problems.append(
            Problem(self.shown, line, col, key=dotted(path) or None, message=message, hint=hint)
        )


def dotted(path: Path_) -> str:
    parts: list[str] = []
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts)
