"""What each kind of step does. Each handler takes the context, the step and its inputs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import numpy as np

from parityspec.backends import BACKENDS
from parityspec.backends.base import BackendModule, LoadedModel, Predictions
from parityspec.backends.context import RunContext
from parityspec.checks import CHECKS
from parityspec.checks.base import CheckInputs, CheckResult, CheckSpecBase
from parityspec.data import Features, Rows
from parityspec.data.sources import load_dataset, split_dataset, streams
from parityspec.data.stored import OutputWriter
from parityspec.errors import InputError
from parityspec.plan.compile import DATA_SPLIT, model_step_id
from parityspec.plan.graph import Step
from parityspec.spec.profiles import CheckTolerances, resolve_tolerances

Inputs = dict[str, Any]


def load_data(ctx: RunContext, step: Step, inputs: Inputs) -> Rows:
    work_dir = ctx.work_dir / "data" if streams(ctx.spec, ctx.spec_dir) else None
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
    """One backend's predictions, in a pass of its own (see `predict_together`)."""
    return predict_together(ctx, {step.id: (step, inputs)})[step.id]


Attempt = Callable[[str, Callable[[], None]], bool]
"""`attempt(step_id, action)` runs a step's share of a shared pass and says whether it
finished; the executor's records a failure as that step's error instead of raising it."""


def _unguarded(step_id: str, action: Callable[[], None]) -> bool:
    action()
    return True


def predict_together(
    ctx: RunContext, steps: dict[str, tuple[Step, Inputs]], attempt: Attempt = _unguarded
) -> dict[str, Predictions]:
    """Predict steps run in one pass over the evaluation rows: each batch is read once and
    every backend predicts it in turn (an ONNX model and its INT8 form share its inputs). A
    backend that fails drops out of the pass; the others go on. Returns the Predictions of
    each step that did not fail; a failure to read the data fails them all (it raises)."""
    evaluation: Rows = next(iter(steps.values()))[1][DATA_SPLIT][1]
    running: dict[str, BatchPrediction] = {}

    def start(step_id: str, step: Step, inputs: Inputs) -> None:
        running[step_id] = BatchPrediction(ctx, step, inputs)

    for step_id, (step, inputs) in steps.items():
        attempt(step_id, partial(start, step_id, step, inputs))
    for _, batch in evaluation.batches(ctx.spec.prediction_batch_size()):
        for step_id, prediction in list(running.items()):
            if not attempt(step_id, partial(prediction.add, batch)):
                del running[step_id]
    results: dict[str, Predictions] = {}

    def finish(step_id: str, prediction: BatchPrediction) -> None:
        results[step_id] = prediction.finish(len(evaluation))

    for step_id, prediction in running.items():
        attempt(step_id, partial(finish, step_id, prediction))
    return results


class BatchPrediction:
    """One predict step fed a batch at a time. Outputs go to disk batch by batch: memory
    does not grow with the rows."""

    def __init__(self, ctx: RunContext, step: Step, inputs: Inputs):
        self.name = step.about
        self.model: LoadedModel = inputs[model_step_id(ctx.spec, self.name)]
        self.module = BACKENDS[self.model.kind]
        self.serve_batch_size = ctx.spec.backends[self.name].serve_batch_size
        self.writer = OutputWriter(ctx.work_dir / "predictions" / self.name)

    def add(self, batch: Features) -> None:
        for outputs in served(self.module, self.model, batch, self.serve_batch_size):
            self.writer.append(outputs)

    def finish(self, rows: int) -> Predictions:
        outputs = self.writer.close()
        for output, values in outputs.items():
            if len(values) != rows:
                raise InputError(
                    f"backend {self.name!r} returned {len(values)} rows of {output!r} "
                    f"for {rows} input rows"
                )
        classes = self.model.facts.get("classes")
        return Predictions(self.name, outputs, inert=self.model.inert, classes=classes)


def served(
    module: BackendModule, model: LoadedModel, batch: Features, serve_batch_size: int | None
) -> Iterator[dict[str, np.ndarray]]:
    """A backend's outputs for `batch`, predicted in calls of `serve_batch_size` rows (the
    batch it is served with) when it declares one."""
    rows = _rows(batch)
    if serve_batch_size is None or rows <= serve_batch_size:
        yield module.predict(model, batch)
        return
    for start in range(0, rows, serve_batch_size):
        yield module.predict(model, _rows_of(batch, start, serve_batch_size))


def _rows(batch: Features) -> int:
    if isinstance(batch, dict):
        return len(next(iter(batch.values())))
    return len(batch)


def _rows_of(batch: Features, start: int, size: int) -> Features:
    if isinstance(batch, dict):
        return {name: values[start : start + size] for name, values in batch.items()}
    return batch.iloc[start : start + size]


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
    return refuse_inert(result, reference, candidate)


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


def refuse_inert(result: CheckResult, *predictions: Predictions) -> CheckResult:
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
