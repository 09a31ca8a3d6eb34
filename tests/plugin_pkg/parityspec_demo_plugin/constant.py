"""Backend kind `constant`: predicts the same value for every row (a baseline to compare)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from parityspec.backends.base import LoadedModel, Offer, Verb
from parityspec.spec.models import BackendSpecBase

KIND = "constant"
OFFERS = frozenset({Offer.TABULAR})  # probabilities or a prediction; no tensors


class Spec(BackendSpecBase):
    """Every row gets `value`: the positive class probability, or the regression output."""

    kind: Literal["constant"]
    value: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5


def verb(spec: Spec) -> Verb:
    return "build"


def source(spec: Spec) -> str | None:
    return None


def referenced_files(spec: Spec) -> list[tuple[str, str]]:
    return []


def needs_data(spec: Spec) -> bool:
    return False


def make(ctx: Any, name: str, spec: Spec, source_model: Any, data: Any) -> LoadedModel:
    return LoadedModel(name, KIND, (ctx.spec.model.task, spec.value), facts={"value": spec.value})


def predict(model: LoadedModel, batch: Any) -> dict[str, np.ndarray]:
    task, value = model.predictor
    if task == "regression":
        return {"prediction": np.full(len(batch), value)}
    return {"probabilities": np.tile([1.0 - value, value], (len(batch), 1))}
