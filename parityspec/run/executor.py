"""Run a plan in order. A failing step records its error, its dependents are skipped with the
reason, and every other step still runs, so the report shows everything."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from parityspec.backends.context import RunContext
from parityspec.errors import ExitCode, ParitySpecError, first_line
from parityspec.plan.graph import Plan, Step
from parityspec.results import DONE, RunState, StepOutcome
from parityspec.run.cache import DamagedCacheEntry, StepCache, restores_whole
from parityspec.run.interrupts import Interrupted, TimedOut, deadline
from parityspec.run.steps import HANDLERS, predict_together, unfinished_check

ShardPass = Callable[
    [Plan, RunContext, RunState, set[str]], tuple[dict[str, StepOutcome], set[str]]
]
"""Runs the pass over the data elsewhere (`run.distributed`): the outcomes of the predict
steps and of the checks it computed, and the ids of those whose value must not be cached."""

T = TypeVar("T")


def execute(
    plan: Plan,
    ctx: RunContext,
    on_step: Callable[[StepOutcome], None] | None = None,
    cache: StepCache | None = None,
    *,
    on_start: Callable[[Step], None] | None = None,
    timeout: float | None = None,
    rebench: bool = False,
    stop_after: Callable[[StepOutcome], bool] | None = None,
    shard_pass: ShardPass | None = None,
) -> RunState:
    """Run every step. A stop signal raises `Interrupted` naming the running step; an
    expired `timeout` ends the running step as an error and skips the rest. `rebench`: the
    checks the cache could restore (a benchmark's timings) run again and replace it.
    `stop_after`: once it is true of a finished step, the rest are skipped ("--fail-fast").
    `shard_pass`: the pass over the data runs there (on a cluster's workers), computing the
    predict steps and the checks that read them; predictions stay there, so none is
    restored from the cache or stored in it."""
    state = RunState(plan)
    restore = _restorable(plan, cache, rebench, predictions=shard_pass is None)
    ahead: dict[str, StepOutcome] = {}  # predict steps already run in a shared pass
    unstored: set[str] = set()  # steps whose value stayed on the workers
    stopped: str | None = None
    with deadline(timeout) as armed:
        for step in plan.steps:
            if step.action not in HANDLERS:
                continue  # the report is written from the finished state, after the run
            if stopped:
                _record(state, StepOutcome(step, "skipped", reason=stopped), on_step, ctx)
                continue
            started = time.perf_counter()
            try:
                if on_start:
                    on_start(step)
                fresh = rebench and step.action == "check"  # a new measurement replaces the old
                if step.action == "predict" and step.id not in restore | ahead.keys():
                    if shard_pass is None:
                        ahead |= _predict_in_one_pass(plan, ctx, state, restore)
                    else:
                        done_there, kept_there = _on_workers(shard_pass, plan, ctx, state, restore)
                        ahead, unstored = ahead | done_there, unstored | kept_there
                done = ahead.pop(step.id, None)
                store = cache if step.id not in unstored else None
                outcome = _step_outcome(step, ctx, state, store, step.id in restore, fresh, done)
                if armed.fired:  # user code swallowed every TimedOut until it returned
                    raise TimedOut(timeout or 0.0)
                _record(state, outcome, on_step, ctx)
                if stop_after and stop_after(outcome):
                    stopped = "--fail-fast"
            except TimedOut as error:
                armed.expire()
                stopped = f"the run timed out (--timeout {error.seconds:g}s) during {step.id}"
                if step.id not in state.outcomes:
                    failed = _error(step, str(error), ExitCode.STEP_ERROR, started)
                    _record(state, failed, on_step, ctx)
            except Interrupted as interrupt:
                interrupt.step = interrupt.step or step.id
                raise
    return state


def _record(
    state: RunState,
    outcome: StepOutcome,
    on_step: Callable[[StepOutcome], None] | None,
    ctx: RunContext,
) -> None:
    if outcome.step.action == "check" and outcome.status not in DONE:
        outcome.value = unfinished_check(ctx, outcome.step, outcome.status, outcome.reason)
    state.outcomes[outcome.step.id] = outcome
    if on_step:
        on_step(outcome)


def _step_outcome(
    step: Step,
    ctx: RunContext,
    state: RunState,
    cache: StepCache | None,
    restore: bool,
    replace: bool = False,
    done: StepOutcome | None = None,
) -> StepOutcome:
    """`done`: the step already ran (in a shared pass); it is only stored."""
    if done is not None:
        outcome = done
    elif restore and cache is not None:
        try:
            return _restore_step(step, ctx, cache)
        except DamagedCacheEntry as damaged:  # already removed: run the step instead
            state.notes.append(str(damaged))
            _rerun_facts_only(step, ctx, state)
            outcome = _run_step(step, ctx, state)
    else:
        outcome = _run_step(step, ctx, state)
    if cache is not None and outcome.status == "ok":
        cache.store(step, outcome.value, replace=replace)
        if cache.disabled_reason and cache.disabled_reason not in state.notes:
            state.notes.append(cache.disabled_reason)
    return outcome


def _rerun_facts_only(step: Step, ctx: RunContext, state: RunState) -> None:
    """A step that was to be restored runs after all: its inputs that came back from the
    cache as facts only (a trained estimator) must run for real first."""
    for dep in step.deps:
        outcome = state.outcomes[dep]
        if outcome.status == "cached" and not restores_whole(outcome.step):
            _rerun_facts_only(outcome.step, ctx, state)
            state.outcomes[dep] = _run_step(outcome.step, ctx, state)


def _restorable(
    plan: Plan, cache: StepCache | None, rebench: bool = False, predictions: bool = True
) -> set[str]:
    """Cached steps that can come from the cache: a model that comes back without its loaded
    form only when no step that runs needs it; `predictions`: predict steps too."""
    if cache is None:
        return set()
    restore = {
        s.id
        for s in plan.steps
        if cache.has(s)
        and not (rebench and s.action == "check")
        and (predictions or s.action != "predict")
    }
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
    value, failure = _attempt(step, lambda: HANDLERS[step.action](ctx, step, inputs))
    if failure:
        return failure
    return StepOutcome(step, "ok", value, seconds=time.perf_counter() - started)


def _predict_in_one_pass(
    plan: Plan, ctx: RunContext, state: RunState, restore: set[str]
) -> dict[str, StepOutcome]:
    """Every predict step that can run now, run in one pass over the data (see
    `predict_together`); none when fewer than two can: each then runs alone."""
    ready = {
        step.id: (step, {d: state.outcomes[d].value for d in step.deps})
        for step in plan.steps
        if step.action == "predict"
        and step.id not in state.outcomes
        and step.id not in restore
        and all(d in state.outcomes and state.outcomes[d].status in DONE for d in step.deps)
    }
    if len(ready) < 2:
        return {}
    seconds = dict.fromkeys(ready, 0.0)
    failures: dict[str, StepOutcome] = {}

    def attempt(step_id: str, action: Callable[[], None]) -> bool:
        started = time.perf_counter()
        failure = _attempt(plan[step_id], action)[1]
        seconds[step_id] += time.perf_counter() - started
        if failure:
            failures[step_id] = failure
        return failure is None

    started = time.perf_counter()
    first = plan[next(iter(ready))]
    predicted, failure = _attempt(first, lambda: predict_together(ctx, ready, attempt))
    if failure:  # reading the data failed: every step of the pass shares the error
        return {i: replace(failure, step=plan[i]) for i in ready}
    reading = (time.perf_counter() - started - sum(seconds.values())) / len(ready)
    outcomes = {i: replace(f, seconds=seconds[i] + reading) for i, f in failures.items()}
    for step_id, value in (predicted or {}).items():
        seconds_taken = seconds[step_id] + reading
        outcomes[step_id] = StepOutcome(plan[step_id], "ok", value, seconds=seconds_taken)
    return outcomes


def _on_workers(
    shard_pass: ShardPass, plan: Plan, ctx: RunContext, state: RunState, restore: set[str]
) -> tuple[dict[str, StepOutcome], set[str]]:
    """The predict steps and the checks that read them, from the shard pass; should it fail,
    every predict step shares its error (and the checks are skipped, upstream failed)."""
    predicts = [s for s in plan.steps if s.action == "predict" and s.id not in state.outcomes]
    done, failure = _attempt(predicts[0], lambda: shard_pass(plan, ctx, state, restore))
    if failure or done is None:
        assert failure is not None
        return {s.id: replace(failure, step=s) for s in predicts}, {s.id for s in predicts}
    return done


def _attempt(step: Step, action: Callable[[], T]) -> tuple[T | None, StepOutcome | None]:
    """Runs the step's work: (its value, None), or (None, the step's error outcome)."""
    started = time.perf_counter()
    try:
        return action(), None
    except ParitySpecError as error:
        return None, _error(step, str(error), error.exit_code, started)
    except (Interrupted, TimedOut):
        raise  # the run's own stop, not the step's fault
    except Exception as error:  # a fault in a library or in the user's code
        return None, _error(step, _describe(error), ExitCode.STEP_ERROR, started)
    except BaseException as error:
        # SystemExit, KeyboardInterrupt or GeneratorExit raised by user code: it may not end
        # the run, nor choose its exit code.
        message = f"{_describe(error)} (user code tried to end the process; the step failed)"
        return None, _error(step, message, ExitCode.STEP_ERROR, started)


def _describe(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        return f"SystemExit({error.code!r})"
    message = type(error).__name__
    if str(error).strip():
        message += f": {first_line(error)}"
    return message


def _error(step: Step, message: str, code: ExitCode, started: float) -> StepOutcome:
    return StepOutcome(
        step,
        "error",
        reason=" ".join(message.split()),
        exit_code=code,
        traceback=traceback.format_exc(),
        seconds=time.perf_counter() - started,
    )
