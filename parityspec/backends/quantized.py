"""INT8 ONNX made by onnxruntime.quantization from an ONNX backend: dynamic or static QDQ."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import Field

from parityspec.backends.base import LoadedModel, Needs, Offer, Verb
from parityspec.backends.onnx import (
    OnnxRunner,
    SessionSettings,
    SessionSpec,
    require_session_providers,
    runtime_facts,
)
from parityspec.errors import InputError, StepError
from parityspec.loading import file_sha256
from parityspec.spec.base import Name

if TYPE_CHECKING:
    from onnx import ModelProto

    from parityspec.backends.context import RunContext
    from parityspec.data import Features, Rows

KIND = "quantized"
OFFERS = frozenset({Offer.TABULAR, Offer.TENSORS, Offer.ONNX_GRAPH, Offer.QUANTIZED_GRAPH})
# A float16 graph's quantization does not load in ONNX Runtime: refused at validate.
DERIVED_FROM = Needs(
    all_of=frozenset({Offer.ONNX_GRAPH}),
    none_of=frozenset({Offer.QUANTIZED_GRAPH, Offer.FLOAT16_GRAPH}),
)
LIBRARIES = ("onnx", "onnxruntime")


class Spec(SessionSpec):
    kind: Literal["quantized"]
    from_: Name = Field(alias="from")
    """The ONNX backend to quantize."""
    method: Literal["dynamic", "static"] = "dynamic"
    """`static` calibrates activations on the train rows and writes QDQ."""
    weight_type: Literal["int8", "uint8"] = "int8"
    per_channel: bool = False
    calibration_rows: Annotated[int, Field(gt=0, le=100_000)] = 256
    """Rows used to calibrate a static quantization."""


def verb(spec: Spec) -> Verb:
    return "quantize"


def source(spec: Spec) -> str | None:
    return spec.from_


def referenced_files(spec: Spec) -> list[tuple[str, str]]:
    return []


def batch_dependent(spec: Spec) -> bool:
    """Dynamic quantization computes activation scales from each batch it is given."""
    return spec.method == "dynamic"


def needs_data(spec: Spec) -> bool:
    return spec.method == "static"


def make(
    ctx: RunContext, name: str, spec: Spec, source_model: LoadedModel | None, data: Rows | None
) -> LoadedModel:
    import onnx

    from parityspec.artifacts import write_bytes
    from parityspec.backends.onnx_graph import count_quantized_ops, deduplicate_opsets

    assert source_model is not None  # source(): a quantization is given the `from:` model
    require_session_providers(spec.session_settings())  # before quantizing, not after
    runner: OnnxRunner = source_model.predictor
    fp32 = onnx.load(str(runner.path))
    deduplicate_opsets(fp32)
    out = ctx.artifact_dir(name) / "model.int8.onnx"
    tmp_out = out.with_suffix(".partial.onnx")
    try:
        _quantize(spec, fp32, tmp_out, runner, data)
        write_bytes(out, tmp_out.read_bytes())
    except InputError:
        raise
    except Exception as error:
        raise StepError(f"onnxruntime.quantization failed: {error}") from error
    finally:
        tmp_out.unlink(missing_ok=True)
    counts = count_quantized_ops(onnx.load(str(out)))
    settings = spec.session_settings()
    quantized = OnnxRunner(
        session=_session(out, settings, ctx, name),
        path=out,
        task=runner.task,
        inputs=runner.inputs,
        output_names=runner.output_names,
        data_file=runner.data_file,
        classes=runner.classes,
        probabilities=runner.probabilities,
    )
    facts = {
        "method": spec.method,
        "quantized_ops": counts,
        "size_bytes": out.stat().st_size,
        "source_size_bytes": runner.path.stat().st_size,
        "model_sha256": file_sha256(out),
        "session": settings.facts(quantized.session.get_providers()),
        "runtime": runtime_facts(quantized.session),
    }
    inert = None
    if not counts:
        inert = (
            f"quantization changed nothing: no op of {spec.from_!r} was quantized "
            "(graphs of only ai.onnx.ml ops, such as trees and linear models, stay float)"
        )
    return LoadedModel(name, KIND, quantized, {"model": out}, facts, inert=inert)


def reopen(ctx: RunContext, model: LoadedModel, spec: Spec) -> LoadedModel:
    """A model restored from the step cache: its session opened on the cached file."""
    from parityspec.backends.onnx import FEATURES_FILE, METADATA_FILE, OnnxRunner

    source = ctx.artifact_dir(spec.from_) / FEATURES_FILE
    features = json.loads(source.read_text()) if source.is_file() else None
    settings = spec.session_settings()
    runner = OnnxRunner.open(
        model.files["model"], ctx, features, settings=settings, backend=model.backend
    )
    # The classes an export names live beside the source model, not beside this one: as
    # when it was made, the quantized model returns its source's labels.
    metadata = ctx.artifact_dir(spec.from_) / METADATA_FILE
    if runner.classes is None and metadata.is_file():
        runner.classes = json.loads(metadata.read_text()).get("classes") or None
    model.predictor = runner
    return model


def runtime_call(model: LoadedModel, batch: Features) -> Callable[[], object]:
    from parityspec.backends.onnx import runtime_call as onnx_call

    return onnx_call(model, batch)


def predict(model: LoadedModel, batch: Features) -> dict[str, np.ndarray]:
    runner: OnnxRunner = model.predictor
    return runner.run(batch)


def _session(path: Path, settings: SessionSettings, ctx: RunContext, backend: str) -> Any:
    from parityspec.backends.onnx import open_session

    return open_session(path, settings, made_here=True, ctx=ctx, backend=backend)


def _quantize(
    spec: Spec, fp32: ModelProto, out: Path, runner: OnnxRunner, data: Rows | None
) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weight_type = QuantType.QInt8 if spec.weight_type == "int8" else QuantType.QUInt8
    with _root_logger_quiet():
        if spec.method == "dynamic":
            quantize_dynamic(fp32, out, weight_type=weight_type, per_channel=spec.per_channel)
            return
        assert data is not None  # needs_data(): a static quantization is given the train rows
        _quantize_static(spec, fp32, out, runner, data, weight_type)


@contextmanager
def _root_logger_quiet() -> Iterator[None]:
    """The quantizer logs generic advice through the root logger; it is not about this run."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


def _quantize_static(
    spec: Spec, fp32: ModelProto, out: Path, runner: OnnxRunner, data: Rows, weight_type: Any
) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    quantize_static(
        fp32,
        out,
        _CalibrationReader(runner, data, spec.calibration_rows),
        quant_format=QuantFormat.QDQ,
        weight_type=weight_type,
        activation_type=QuantType.QInt8,
        per_channel=spec.per_channel,
    )


class _CalibrationReader:
    """Feeds the first `rows` training rows to the calibrator, 32 at a time."""

    def __init__(self, runner: OnnxRunner, data: Rows, rows: int):
        rows = min(rows, len(data))
        self._feeds = iter(
            [runner.feeds(data.slice(s, min(s + 32, rows))) for s in range(0, rows, 32)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)

    def rewind(self) -> None:  # the calibrator reads once
        pass
