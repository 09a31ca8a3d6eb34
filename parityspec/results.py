"""What a run leaves: each step's outcome, and the exit code they add up to. The executor
writes them; the report is built from them (and never from the running machinery)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from parityspec.errors import ExitCode
from parityspec.plan.graph import Plan, Step

StepStatus = Literal["ok", "cached", "error", "skipped"]
DONE = ("ok", "cached")


@dataclass
class StepOutcome:
    """One step's end. A check step's `value` is always its `CheckResult`, for a skipped or
    errored check too (its status and reason, and the tolerances it would have applied)."""

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
