"""Load a spec file: safe YAML, the pydantic models, then the semantic rules."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from parityspec.errors import SpecError
from parityspec.spec.composition import Spec
from parityspec.spec.locate import problems_from
from parityspec.spec.semantic import semantic_problems
from parityspec.spec.yaml_source import SourceMap, read_document


@dataclass(frozen=True)
class LoadedSpec:
    spec: Spec
    path: Path
    shown: str
    """The path as the user gave it, for messages."""
    source: SourceMap

    @property
    def directory(self) -> Path:
        return self.path.parent


def load_spec(path: str | os.PathLike, *, check_files: bool = True) -> LoadedSpec:
    shown = str(path)
    data, source = read_document(Path(path), shown)
    resolved = Path(path).resolve()  # after the read: a symlink loop is refused there
    try:
        spec = Spec.model_validate(data)
    except ValidationError as error:
        raise SpecError(problems_from(error, Spec, data, shown, source)) from None
    problems = semantic_problems(spec, shown, source, resolved.parent if check_files else None)
    if problems:
        raise SpecError(problems)
    return LoadedSpec(spec, resolved, shown, source)
