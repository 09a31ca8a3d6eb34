"""The base of every spec model: strict, immutable, documented."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class StrictModel(BaseModel):
    """Unknown keys are errors, models are frozen, `from` may be written as `from`."""

    # strict: "15" is not 15 and "yes" is not true, exactly as the published JSON Schema says.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        use_attribute_docstrings=True,
        strict=True,
    )


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
