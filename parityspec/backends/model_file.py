"""What the kinds that load a model from one file of a library's own format share (XGBoost,
LightGBM, CatBoost): the spec's `path` checked by its suffix, and the protocol functions of
a backend made from nothing but that file. A kind's module re-exports the functions and
subclasses the spec, naming its suffixes and how its library saves such a file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import field_validator

from parityspec.backends.base import Verb
from parityspec.errors import InputError
from parityspec.loading import file_problem
from parityspec.spec.base import FilePath
from parityspec.spec.models import BackendSpecBase

if TYPE_CHECKING:
    from parityspec.backends.context import RunContext


class ModelFileSpec(BackendSpecBase):
    FORMAT: ClassVar[str]
    """`a LightGBM model file`: what the file is, for messages."""
    SUFFIXES: ClassVar[tuple[str, ...]]
    SAVED_WITH: ClassVar[str]
    """How its library writes one, as the hint says it."""

    path: FilePath

    @field_validator("path")
    @classmethod
    def _known_suffix(cls, path: str) -> str:
        suffix = Path(path).suffix.lower()
        if suffix not in cls.SUFFIXES:
            expected = " or ".join(cls.SUFFIXES)
            raise ValueError(
                f"{cls.FORMAT} is {expected}, not {suffix or 'no suffix'}"
                f" (save it with {cls.SAVED_WITH})"
            )
        return path


def verb(spec: ModelFileSpec) -> Verb:
    return "load"


def source(spec: ModelFileSpec) -> str | None:
    return None


def referenced_files(spec: ModelFileSpec) -> list[tuple[str, str]]:
    return [("path", spec.path)]


def needs_data(spec: ModelFileSpec) -> bool:
    return False


def model_path(ctx: RunContext, spec: ModelFileSpec) -> Path:
    """The model file, resolved; one that cannot be read as a file is exit 2 naming it."""
    path = ctx.resolve(spec.path)
    problem = file_problem(path)
    if problem:
        raise InputError(problem, file=spec.path)
    return path
