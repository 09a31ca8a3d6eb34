"""Run a plan in order. A failing step records its error, its dependents are skipped with the
reason, and every other step still runs, so the report shows everything."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from parityspec.errors import ExitCode, ParitySpecError, first_line
from parityspec.plan.graph import Plan, Step
from parityspec.run.cache import StepCache, restores_whole
from parityspec.run.context import RunContext
from parityspec.run.steps import HANDLERS

StepStatus = Literal["ok", "cached", "error", "skipped"]
DONE = ("ok", "cached")


@dataclass
class StepOutcome:
    step: Step
    status: StepStatus
    value: Any = None
    reason: str | None = None
    exit_code: ExitCode | None = None
    """For an error: INVALID_INPUT when the user's input is at fault, else STEP_ERROR."""
    traceback: str | None = None
    seconds: float = 0.0


@dataclass
class RunState:
    plan: Plan
    outcomes: dict[str, StepOutcome] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """Things the run recovered from (a damaged cache entry recomputed, a cache it could not
    use): printed once each and listed in the report's `run` section."""


def execute(
    plan: Plan,
    ctx: RunContext,
    on_step: Callable[[StepOutcome], None] | None = None,
    cache: StepCache | None = None,
) -> RunState:
    state = RunState(plan)
    restore = _restorable(plan, cache)
    for step in plan.steps:
        if step.action not in HANDLERS:
            continue  # the report is written from the finished state, after the run
        if step.id in restore:
            outcome = _restore_step(step, ctx, cache)
        else:
            outcome = _run_step(step, ctx, state)
            if cache is not None and outcome.status == "ok":
                cache.store(step, outcome.value)
        state.outcomes[step.id] = outcome
        if on_step:
            on_step(outcome)
    return state


def _restorable(plan: Plan, cache: StepCache | None) -> set[str]:
    """Cached steps that can come from the cache: a model that comes back without its loaded
    form only when no step that runs needs it."""
    if cache is None:
        return set()
    restore = {s.id for s in plan.steps if cache.has(s)}
    for step in reversed(plan.steps):
        if step.id in restore:
            continue
        for dep in step.deps:
            if dep in restore and not restores_whole(plan[dep]):
                restore.discard(dep)
    return restore


def _restore_step(step: Step, ctx: RunContext, cache: StepCache) -> StepOutcome:
    started = time.perf_counter()
    value = cache.load(step, ctx)
    return StepOutcome(step, "cached", value, seconds=time.perf_counter() - started)


def _run_step(step: Step, ctx: RunContext, state: RunState) -> StepOutcome:
    blocked = [d for d in step.deps if state.outcomes[d].status not in DONE]
    if blocked:
        return StepOutcome(step, "skipped", reason=f"upstream step {blocked[0]} did not finish")
    inputs = {d: state.outcomes[d].value for d in step.deps}
    started = time.perf_counter()
    try:
        value = HANDLERS[step.action](ctx, step, inputs)
    except ParitySpecError as error:
        return _error(step, str(error), error.exit_code, started)
    except Exception as error:  # a fault in a library or in the user's code
        message = type(error).__name__
        if str(error).strip():
            message += f": {first_line(error)}"
        return _error(step, message, ExitCode.STEP_ERROR, started)
    return StepOutcome(step, "ok", value, seconds=time.perf_counter() - started)


def _error(step: Step, message: str, code: ExitCode, started: float) -> StepOutcome:
    return StepOutcome(
        step,
        "error",
        reason=" ".join(message.split()),
        exit_code=code,
        traceback=traceback.format_exc(),
        seconds=time.perf_counter() - started,
    )


def exit_code(state: RunState) -> ExitCode:
    errors = [o.exit_code for o in state.outcomes.values() if o.status == "error"]
    if ExitCode.INVALID_INPUT in errors:
        return ExitCode.INVALID_INPUT
    if errors:
        return ExitCode.STEP_ERROR
    checks = [o.value for o in state.outcomes.values() if o.step.action == "check"]
    if any(c.status != "passed" for c in checks):
        return ExitCode.CHECK_FAILED
    return ExitCode.PASSED
