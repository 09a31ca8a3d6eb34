"""Steps, the plan that orders them, and the named error for a cycle."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from parityspec.errors import ParitySpecError


class CycleError(ParitySpecError):
    def __init__(self, cycle: list[str]):
        self.cycle = cycle
        super().__init__(f"the plan has a cycle: {' -> '.join(cycle)}")


@dataclass(frozen=True)
class Step:
    """One node of the plan. `key` hashes what the step's output depends on."""

    id: str
    action: str
    """What the executor does: data.load, data.split, model, predict, check, report."""
    deps: tuple[str, ...] = ()
    subject: str | None = None
    """The backend or check the step is about."""
    fragment: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    key: str = ""

    @property
    def about(self) -> str:
        """`subject`, on the steps that have one (model, predict, check)."""
        assert self.subject is not None, f"step {self.id} is about no backend or check"
        return self.subject


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    """In execution order: every step after its dependencies."""

    def __getitem__(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.steps]


def topological_order(steps: list[Step]) -> list[Step]:
    """Dependencies first; ties keep the given order, so plans are stable."""
    by_id = {s.id: s for s in steps}
    ordered: list[Step] = []
    state: dict[str, str] = {}

    def visit(step: Step, trail: list[str]) -> None:
        if state.get(step.id) == "done":
            return
        if state.get(step.id) == "active":
            raise CycleError([*trail[trail.index(step.id) :], step.id])
        state[step.id] = "active"
        for dep in step.deps:
            visit(by_id[dep], [*trail, step.id])
        state[step.id] = "done"
        ordered.append(step)

    for step in steps:
        visit(step, [])
    return ordered


def needed_by(steps: list[Step], targets: set[str]) -> list[Step]:
    """The targets and everything they depend on, in the given order."""
    by_id = {s.id: s for s in steps}
    keep: set[str] = set()
    pending = list(targets)
    while pending:
        step_id = pending.pop()
        if step_id not in keep:
            keep.add(step_id)
            pending.extend(by_id[step_id].deps)
    return [s for s in steps if s.id in keep]
