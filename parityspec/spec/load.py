"""Load a spec file: safe YAML, the pydantic models, then the semantic rules."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import ValidationError

from parityspec.errors import Problem, SpecError
from parityspec.spec.composition import Spec
from parityspec.spec.locate import problems_from
from parityspec.spec.matrix import expand, fill_swept
from parityspec.spec.semantic import located, semantic_problems
from parityspec.spec.yaml_source import SourceMap, dotted, read_document


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
    data, filled, conflicts = fill_swept(data)
    if conflicts:
        raise SpecError(located(conflicts, shown, source))
    try:
        spec = Spec.model_validate(data)
    except ValidationError as error:
        problems = problems_from(error, Spec, data, shown, source)
        raise SpecError([_at_matrix(p, filled, source) for p in problems]) from None
    spec_dir = resolved.parent if check_files else None
    problems = semantic_problems(spec, shown, source, spec_dir)
    if problems:
        raise SpecError(problems)
    expanded = expand(spec)
    if expanded is not spec:  # the rules again, on the values each combination takes
        problems = semantic_problems(expanded, shown, source, spec_dir)
        if problems:
            raise SpecError(problems)
    return LoadedSpec(expanded, resolved, shown, source)


def _at_matrix(problem: Problem, filled: set[tuple[str, str]], source: SourceMap) -> Problem:
    """A problem with a swept field's first value, located at that value in the matrix."""
    for backend, field in filled:
        if problem.key == dotted(("backends", backend, field)):
            path = ("backends", backend, "matrix", field, 0)
            line, col = source.locate(path)
            return replace(problem, key=dotted(path), line=line, col=col)
    return problem
