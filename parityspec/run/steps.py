"""What each kind of step does. Each handler takes the context, the step and its inputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from parityspec.backends import BACKENDS
from parityspec.backends.base import LoadedModel, Predictions
from parityspec.backends.context import RunContext
from parityspec.checks import CHECKS
from parityspec.checks.base import CheckInputs, CheckResult, CheckSpecBase
from parityspec.data import Rows
from parityspec.data.sources import load_dataset, split_dataset, streams
from parityspec.data.stored import OutputWriter
from parityspec.errors import InputError
from parityspec.plan.compile import DATA_SPLIT, model_step_id
from parityspec.plan.graph import Step
from parityspec.spec.profiles import CheckTolerances, resolve_tolerances

Inputs = dict[str, Any]


def load_data(ctx: RunContext, step: Step, inputs: Inputs) -> Rows:
    work_dir = ctx.work_dir / "data" if streams(ctx.spec) else None
    return load_dataset(ctx.spec.data, ctx.spec.model, ctx.spec_dir, work_dir)


def split_data(ctx: RunContext, step: Step, inputs: Inputs) -> tuple[Rows, Rows]:
    return split_dataset(inputs["data:load"], ctx.spec.data.split, ctx.spec.model.task)


def make_model(ctx: RunContext, step: Step, inputs: Inputs) -> LoadedModel:
    name = step.about
    backend = ctx.spec.backends[name]
    module = BACKENDS[backend.kind]
    origin = module.source(backend)
    source_model = inputs[model_step_id(ctx.spec, origin)] if origin else None
    train = inputs[DATA_SPLIT][0] if DATA_SPLIT in inputs else None
    return module.make(ctx, name, backend, source_model, train)


def predict(ctx: RunContext, step: Step, inputs: Inputs) -> Predictions:
    name = step.about
    model: LoadedModel = inputs[model_step_id(ctx.spec, name)]
    evaluation: Rows = inputs[DATA_SPLIT][1]
    module = BACKENDS[model.kind]
    # Outputs go to disk batch by batch: memory does not grow with the rows.
    writer = OutputWriter(ctx.work_dir / "predictions" / name)
    for _, batch in evaluation.batches(ctx.spec.data.batch_size):
        writer.append(module.predict(model, batch))
    outputs = writer.close()
    for output, values in outputs.items():
        if len(values) != len(evaluation):
            raise InputError(
                f"backend {name!r} returned {len(values)} rows of {output!r} "
                f"for {len(evaluation)} input rows"
            )
    return Predictions(name, outputs, inert=model.inert, classes=model.facts.get("classes"))


def run_check(ctx: RunContext, step: Step, inputs: Inputs) -> CheckResult:
    check = next(c for c in ctx.spec.checks if c.id == step.subject)
    models = {
        b: inputs[model_step_id(ctx.spec, b)]
        for b in check.between
        if model_step_id(ctx.spec, b) in inputs
    }
    # A check that reads no predictions still learns whether a model is inert.
    reference, candidate = (
        inputs.get(f"predict:{b}") or Predictions(b, {}, inert=models[b].inert)
        for b in check.between
    )
    check_inputs = CheckInputs(ctx.spec, inputs[DATA_SPLIT][1], reference, candidate, models)
    result = CHECKS[check.type].run(check, check_tolerances(ctx, check), check_inputs)
    return _refuse_inert(result, reference, candidate)


def check_tolerances(ctx: RunContext, check: CheckSpecBase) -> CheckTolerances:
    """The check's own tolerances: its profile's, then the fields set on the check."""
    return resolve_tolerances(
        check.TOLERANCES, check.profile, ctx.spec.profiles, check.tolerance_overrides()
    )


def unfinished_check(ctx: RunContext, step: Step, status: str, reason: str | None) -> CheckResult:
    """The result of a check that did not run (skipped) or failed to (error): the report
    shows it like any other, with the tolerances it would have applied."""
    check = next(c for c in ctx.spec.checks if c.id == step.subject)
    return CheckResult(
        "skipped" if status == "skipped" else "error",
        reason or "",
        tolerances=check_tolerances(ctx, check).model_dump(exclude_none=True),
    )


def _refuse_inert(result: CheckResult, *predictions: Predictions) -> CheckResult:
    """A model that cannot count as validated fails every check it takes part in."""
    inert = "; ".join(f"{p.backend}: {p.inert}" for p in predictions if p.inert)
    if not inert:
        return result
    if result.status == "passed":
        result.reason = f"{inert} (the figures alone would pass: {result.reason})"
    else:
        result.reason = f"{inert}; {result.reason}"
    result.status = "failed"
    return result


HANDLERS: dict[str, Callable[[RunContext, Step, Inputs], Any]] = {
    "data.load": load_data,
    "data.split": split_data,
    "model": make_model,
    "predict": predict,
    "check": run_check,
}
