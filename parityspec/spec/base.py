"""The base of every spec model: strict, immutable, documented."""

from __future__ import annotations

import ast
import inspect
import itertools
import linecache
import re
import sys
import textwrap
from types import FrameType
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.fields import FieldInfo


class StrictModel(BaseModel):
    """Unknown keys are errors, models are frozen, `from` may be written as `from`. A field's
    docstring (the string below it) is its description, in the schema and the reference."""

    # strict: "15" is not 15 and "yes" is not true, exactly as the published JSON Schema says.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        strict=True,
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Before pydantic collects the fields, so it reads the descriptions set here. Not
        # pydantic's `use_attribute_docstrings`: it finds the class's source by asking
        # `inspect.getmodule` of every frame, which scans sys.modules, about 0.05 s a run.
        super().__init_subclass__(**kwargs)
        for name, doc in _attribute_docstrings(cls).items():
            value = cls.__dict__.get(name)
            if isinstance(value, FieldInfo):
                if value.description is None:  # pydantic merges only what Field() was given
                    described = Annotated[Any, Field(description=doc)]
                    setattr(cls, name, FieldInfo.from_annotated_attribute(described, value))
            elif name in cls.__dict__:
                setattr(cls, name, Field(value, description=doc))
            else:  # required, as a field declared again without a default is
                setattr(cls, name, Field(description=doc))


def _attribute_docstrings(cls: type) -> dict[str, str]:
    """Each annotated name of the class body followed by a string, with that string."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__") == cls.__module__:
            body = _class_body(cls, frame.f_code.co_filename, frame.f_lineno, frame.f_globals)
            if body is not None:
                return {
                    before.target.id: inspect.cleandoc(after.value.value)
                    for before, after in itertools.pairwise(body)
                    if isinstance(before, ast.AnnAssign)
                    and isinstance(before.target, ast.Name)
                    and not before.target.id.startswith("_")  # private, not a field
                    and "ClassVar" not in ast.dump(before.annotation)
                    and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)
                }
        frame = frame.f_back
    return {}  # made by `create_model`, or its source is not at hand


def _class_body(cls: type, file: str, line: int, module: dict) -> list[ast.stmt] | None:
    """The body of the class statement at `line`, if it defines `cls`."""
    lines = linecache.getlines(file, module)
    if not lines[line - 1 : line] or not lines[line - 1].lstrip().startswith("class "):
        return None
    source = textwrap.dedent("".join(inspect.getblock(lines[line - 1 :])))
    if source.startswith((" ", "\t")):  # a multi-line string less indented than the class
        source = "def _():\n" + source
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    node = tree.body[0]
    if isinstance(node, ast.FunctionDef):
        node = node.body[0]
    return node.body if isinstance(node, ast.ClassDef) and node.name == cls.__name__ else None


# A file named in a spec, relative to the spec file; an empty one names no file.
FilePath = Annotated[str, StringConstraints(min_length=1)]

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]*$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=64)]

# `path/to/file.py:function`, resolved relative to the spec file.
CALLABLE_PATTERN = r"^[^:]+\.py:[A-Za-z_][A-Za-z0-9_]*$"
CallableRef = Annotated[
    str,
    StringConstraints(pattern=CALLABLE_PATTERN),
    Field(examples=["../examples/churn/train.py:build_pipeline"]),
]


def is_name(text: str) -> bool:
    return re.match(NAME_PATTERN, text) is not None
