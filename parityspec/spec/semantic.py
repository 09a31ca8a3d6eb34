"""Rules the schema cannot express: references, `from` chains, tasks, files."""

from __future__ import annotations

import glob
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from parityspec.errors import Problem
from parityspec.loading import file_problem
from parityspec.spec.composition import (
    BACKENDS,
    CHECKS,
    Needs,
    Offer,
    Spec,
    capabilities,
    check_capabilities,
)
from parityspec.spec.locate import did_you_mean
from parityspec.spec.matrix import Found, matrix_problems, sweep_of
from parityspec.spec.profiles import BUILTIN_PROFILES
from parityspec.spec.yaml_source import SourceMap, dotted


class _Collector:
    def __init__(
        self, shown: str, source: SourceMap, where: Callable[[tuple], tuple] = lambda p: p
    ) -> None:
        """`where`: a path of the spec as a path of the document (a swept backend's)."""
        self.shown, self.source, self.where = shown, source, where
        self.problems: list[Problem] = []

    def add(self, path: tuple, message: str, hint: str | None = None, *, key: bool = False) -> None:
        path = self.where(path)
        line, col = self.source.locate(path, key=key)
        problem = Problem(self.shown, line, col, dotted(path), message, hint)
        if problem not in self.problems:  # combinations of one sweep may share a problem
            self.problems.append(problem)


def located(found: Iterable[Found], shown: str, source: SourceMap) -> list[Problem]:
    collector = _Collector(shown, source)
    for path, message, hint in found:
        collector.add(path, message, hint)
    return collector.problems


def semantic_problems(
    spec: Spec, shown: str, source: SourceMap, spec_dir: Path | None
) -> list[Problem]:
    sweep = sweep_of(spec)
    found = _Collector(shown, source, sweep.document_path if sweep else lambda p: p)
    _check_backends(spec, found)
    for path, message, hint in matrix_problems(spec):
        found.add(path, message, hint)
    _check_profiles(spec, found)
    _check_checks(spec, found)
    _check_data(spec, found)
    if spec_dir is not None:
        _check_files(spec, spec_dir, found)
        if not found.problems:  # the files exist: what they say about the checks
            _check_checks_against_files(spec, spec_dir, found)
    return found.problems


def _check_checks_against_files(spec: Spec, spec_dir: Path, found: _Collector) -> None:
    for index, check in enumerate(spec.checks):
        hook = check_capabilities(CHECKS[check.type]).file_problems
        for key, message, hint in hook(check, spec, spec_dir):
            found.add(("checks", index, *_key_path(key)), message, hint)


def _check_backends(spec: Spec, found: _Collector) -> None:
    names = set(spec.backends)
    serves = Needs(frozenset({Offer.TENSORS if spec.model.task == "tensor" else Offer.TABULAR}))
    for name, backend in spec.backends.items():
        module = BACKENDS[backend.kind]
        if not serves.met_by(capabilities(module).offers):
            found.add(
                ("backends", name, "kind"),
                f"backend kind {backend.kind!r} does not serve task {spec.model.task!r}",
                f"kinds that do: {', '.join(serves.kinds(BACKENDS))}",
            )
        origin = module.source(backend)
        if origin is None:
            continue
        path = ("backends", name, "from")
        if origin not in names:
            found.add(path, f"no backend named {origin!r}", did_you_mean(origin, names))
            continue
        # The derived kind says what its source must offer; the source's kind says what it does.
        needs = capabilities(module).DERIVED_FROM
        origin_kind = spec.backends[origin].kind
        if needs is None or not needs.met_by(capabilities(BACKENDS[origin_kind]).offers):
            allowed = " or ".join(needs.kinds(BACKENDS)) if needs else ""
            found.add(
                path,
                f"backend kind {backend.kind!r} cannot be made from {origin!r} "
                f"(kind {origin_kind!r})",
                f"`from` must name a backend of kind {allowed}"
                if allowed
                else f"kind {backend.kind!r} declares no kind it is made from (DERIVED_FROM)",
            )
    for cycle_start in _from_cycles(spec):
        found.add(
            ("backends", cycle_start, "from"),
            f"the `from` chain loops back to {cycle_start!r}",
            "each backend must derive from an earlier one",
        )


def _from_cycles(spec: Spec) -> list[str]:
    cyclic = []
    for start in spec.backends:
        seen: set[str] = set()
        current: str | None = start
        while current in spec.backends and current not in seen:
            seen.add(current)
            backend = spec.backends[current]
            current = BACKENDS[backend.kind].source(backend)
        if current == start:
            cyclic.append(start)
    return cyclic[:1]


def _check_profiles(spec: Spec, found: _Collector) -> None:
    known = set(BUILTIN_PROFILES) | set(spec.profiles)
    for name, profile in spec.profiles.items():
        if name in BUILTIN_PROFILES:
            found.add(
                ("profiles", name),
                f"{name!r} is a built-in profile",
                "choose another name",
                key=True,
            )
        elif profile.extends not in known:
            found.add(
                ("profiles", name, "extends"),
                f"no profile named {profile.extends!r}",
                did_you_mean(profile.extends, known),
            )
    for name in spec.profiles:
        chain, current = [], name
        while current in spec.profiles and current not in chain:
            chain.append(current)
            current = spec.profiles[current].extends
        if current in chain:
            found.add(
                ("profiles", name, "extends"),
                f"profiles extend each other in a loop: {' -> '.join([*chain, current])}",
            )
            break


def _check_checks(spec: Spec, found: _Collector) -> None:
    known_profiles = set(BUILTIN_PROFILES) | set(spec.profiles)
    seen_ids: dict[str, int] = {}
    for index, check in enumerate(spec.checks):
        base = ("checks", index)
        if check.id in seen_ids:
            found.add(
                (*base, "id"),
                f"duplicate check id {check.id!r} (also checks[{seen_ids[check.id]}])",
                "give each check its own id",
            )
        seen_ids.setdefault(check.id, index)
        for position, backend in enumerate(check.between):
            if backend not in spec.backends:
                found.add(
                    (*base, "between", position),
                    f"no backend named {backend!r}",
                    did_you_mean(backend, set(spec.backends)),
                )
        if check.between[0] == check.between[1]:
            found.add((*base, "between"), "a check compares two different backends")
        if check.profile not in known_profiles:
            found.add(
                (*base, "profile"),
                f"no profile named {check.profile!r}",
                did_you_mean(check.profile, known_profiles),
            )
        module = CHECKS[check.type]
        if spec.model.task not in module.TASKS:
            found.add(
                (*base, "type"),
                f"{check.type} does not apply to task {spec.model.task!r}",
                f"it applies to: {', '.join(module.TASKS)}",
            )
        hooks = check_capabilities(module)
        _check_model_needs(spec, check, hooks.MODEL_NEEDS, found, base)
        for key, message, hint in hooks.problems(check, spec):
            found.add((*base, *_key_path(key)), message, hint)


def _check_model_needs(
    spec: Spec, check: Any, needs: tuple[Needs, Needs], found: _Collector, base: tuple
) -> None:
    """What the check looks for inside its models, against what their kinds offer."""
    for position, (backend, need) in enumerate(zip(check.between, needs, strict=True)):
        if backend not in spec.backends:
            continue  # reported above
        kind = spec.backends[backend].kind
        if not need.met_by(capabilities(BACKENDS[kind]).offers):
            side = ("reference", "candidate")[position]
            found.add(
                (*base, "between", position),
                f"{check.type} needs a {side} backend offering {need}; "
                f"{backend!r} is of kind {kind!r}",
                f"kinds that do: {', '.join(need.kinds(BACKENDS)) or 'none registered'}",
            )


def _key_path(key: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in key.split("."))


def _check_data(spec: Spec, found: _Collector) -> None:
    task = spec.model.task
    if task == "tensor" and not spec.model.inputs:
        found.add(("model",), "task tensor needs model.inputs", "declare each input tensor")
    if task != "tensor" and spec.data.synthetic is not None:
        found.add(
            ("data", "synthetic"),
            "synthetic data is for tensor models",
            "use a data file or a scikit-learn data set",
        )


def _names_shards(spec_dir: Path, path: str) -> bool:
    """A directory or a glob of Parquet files (see data/shards.py)."""
    return bool(set("*?[") & set(path)) or (spec_dir / path).is_dir()


def _check_files(spec: Spec, spec_dir: Path, found: _Collector) -> None:
    referenced: list[tuple[tuple[str, ...], str]] = (
        [(("data", "path"), spec.data.path)] if spec.data.path else []
    )
    for name, backend in spec.backends.items():
        for key, value in BACKENDS[backend.kind].referenced_files(backend):
            referenced.append((("backends", name, key), value))
    relative = f"paths are relative to the spec's folder ({spec_dir.name}/)"
    if spec.data.path and _names_shards(spec_dir, spec.data.path):
        referenced.pop(0)  # its Parquet files are read, and checked, shard by shard
        shards = spec_dir / spec.data.path
        if shards.is_dir() and not any(shards.rglob("*.parquet")):
            found.add(
                ("data", "path"),
                f"{spec.data.path} is a directory with no .parquet files",
                f"name a data file, or a directory of Parquet files; {relative}",
            )
        elif not shards.is_dir() and not glob.glob(str(shards), recursive=True):
            found.add(("data", "path"), f"the glob matches no file: {spec.data.path}", relative)
    for path, value in referenced:
        problem = file_problem(spec_dir / value)
        if problem == "no such file":
            found.add(path, f"file not found: {value}", relative)
        elif problem:
            found.add(path, f"{value} {problem}", f"name a file; {relative}")
    templates = spec.report.templates
    if templates and not (spec_dir / templates).exists():  # a folder, not a file
        found.add(("report", "templates"), f"file not found: {templates}", relative)
