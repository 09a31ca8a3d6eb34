"""A check module's optional hooks, with their defaults: the one place that looks them up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parityspec.backends.base import Needs
from parityspec.spec.models import SpecBase

if TYPE_CHECKING:
    from parityspec.checks.base import CheckModule

# (key under the check, message, hint).
KeyedProblem = tuple[str, str, str | None]


def no_problems(check: Any, spec: SpecBase) -> list[KeyedProblem]:
    return []


def no_file_problems(check: Any, spec: SpecBase, spec_dir: Path) -> list[KeyedProblem]:
    return []


def no_artifacts(entry: dict[str, Any]) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class CheckCapabilities:
    """Each field is read from the module attribute of the same name when the module defines
    it; the default below stands in when it does not."""

    NEEDS_PREDICTIONS: bool = True
    """Whether it reads both backends' predictions (a benchmark times the models instead)."""
    NEEDS_MODELS: bool = False
    """Whether it needs the loaded models, not only their predictions."""
    CACHED: bool = True
    """Whether its result may come from the step cache. Its key hashes the check, the
    profiles and its inputs' keys (predictions, models, data), so the same inputs give the
    same result, and a warm run then reads no data and loads no model. A benchmark's
    timings are measured once per pair of models (a warm run reports them, saying so);
    `--rebench` runs every check again. False: a check whose result depends on anything
    else."""
    LIBRARIES: tuple[str, ...] = ()
    """Distributions its result depends on beyond the core ones (`input_search`: hypothesis,
    whose search changes between versions): their versions enter its cache key."""
    MODEL_NEEDS: tuple[Needs, Needs] = (Needs(), Needs())
    """What the reference and the candidate backend must offer; checked when the spec is
    validated, so `run` may rely on it."""
    problems: Callable[[Any, SpecBase], list[KeyedProblem]] = no_problems
    """What the schema cannot say about the check in this spec (its fields against the
    model's task, what it needs from the data); keys are relative to the check."""
    file_problems: Callable[[Any, SpecBase, Path], list[KeyedProblem]] = no_file_problems
    """What the spec's files say about the check before anything runs (`input_search`: the
    data's columns, the columns each booster file reads), for `validate`; reads headers
    and metadata only, imports no heavy library."""
    READS: tuple[str, ...] = ("probabilities",)
    """What it reads of a classifier's predictions: `probabilities`, `labels` (a backend's
    own, else the arg-max of its probabilities) or `scores` (decision scores). A check
    reading probabilities is refused when `model.probabilities` is false, one reading
    scores when it is true: the backends would not return them."""
    artifacts: Callable[[dict[str, Any]], dict[str, Any]] = no_artifacts
    """Files of its own, from its report entry: relative path -> bytes, written as they are,
    or JSON-able content, written as JSON, under `artifacts/<check id>/`
    (`probability_parity`: the seed `parity_report.json`)."""


def check_capabilities(module: CheckModule) -> CheckCapabilities:
    names = (f.name for f in fields(CheckCapabilities))
    found = CheckCapabilities(**{n: getattr(module, n) for n in names if hasattr(module, n)})
    if not found.NEEDS_PREDICTIONS:
        return found
    own = found.problems

    def problems(check: Any, spec: SpecBase) -> list[KeyedProblem]:
        return _classifier_outputs(check, spec, found.READS) + own(check, spec)

    return replace(found, problems=problems)


def _classifier_outputs(check: Any, spec: SpecBase, reads: tuple[str, ...]) -> list[KeyedProblem]:
    """A check reading what the classifier does not return (`model.probabilities`)."""
    model = spec.model
    if model.task not in ("binary", "multiclass"):
        return []
    if not model.probabilities and "probabilities" in reads:
        return [
            (
                "type",
                f"{check.type} compares probabilities, and model.probabilities is false (a "
                "classifier without predict_proba)",
                "compare its labels (label_agreement) and decision scores (score_parity)",
            )
        ]
    if model.probabilities and "scores" in reads:
        return [
            (
                "type",
                f"{check.type} compares decision scores, which only classifiers without "
                "probabilities return (model.probabilities: false)",
                "compare probabilities (probability_parity), or set `probabilities: false` "
                "under model for a classifier without predict_proba",
            )
        ]
    return []
