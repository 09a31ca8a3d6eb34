"""The planner: only what the selected checks need, stable ids and keys, named cycles."""

from __future__ import annotations

from pathlib import Path

import pytest

from parityspec.backends import BACKENDS
from parityspec.backends.base import capabilities
from parityspec.plan.compile import compile_plan
from parityspec.plan.graph import CycleError, Step, topological_order
from parityspec.plan.render import as_mermaid
from parityspec.spec.load import load_spec
from tests.conftest import SPECS


@pytest.fixture(scope="module")
def churn():
    return load_spec(SPECS / "churn.yaml").spec


def test_full_plan_orders_every_step_after_its_inputs(churn):
    plan = compile_plan(churn)
    position = {step.id: i for i, step in enumerate(plan.steps)}
    assert all(position[d] < position[s.id] for s in plan.steps for d in s.deps)
    assert plan.ids[:2] == ["data:load", "data:split"]
    assert plan.ids[-1] == "report"
    assert {"build:sklearn", "export:onnx", "quantize:int8", "predict:int8"} <= set(plan.ids)


def test_selecting_a_check_keeps_only_what_it_needs(churn):
    plan = compile_plan(churn, ["onnx-parity"])
    assert plan.ids == [
        "data:load",
        "data:split",
        "build:sklearn",
        "export:onnx",
        "predict:sklearn",
        "predict:onnx",
        "check:onnx-parity",
        "report",
    ]


def test_keys_are_stable_and_change_with_the_spec(churn):
    first, second = compile_plan(churn), compile_plan(churn)
    assert [s.key for s in first.steps] == [s.key for s in second.steps]
    changed = churn.model_copy(
        update={
            "backends": {
                **churn.backends,
                "onnx": churn.backends["onnx"].model_copy(update={"opset": 15}),
            }
        }
    )
    keys_before = {s.id: s.key for s in first.steps}
    keys_after = {s.id: s.key for s in compile_plan(changed).steps}
    assert keys_before["build:sklearn"] == keys_after["build:sklearn"]
    # The export changed, and so did everything downstream of it.
    for step_id in ("export:onnx", "quantize:int8", "predict:int8", "check:int8-parity"):
        assert keys_before[step_id] != keys_after[step_id]


def test_every_key_hashes_the_libraries_the_backend_kinds_declare(churn, monkeypatch):
    """An upgrade of a library any kind declares recomputes what is cached."""
    before = {s.id: s.key for s in compile_plan(churn).steps}
    declared = (*capabilities(BACKENDS["onnx"]).LIBRARIES, "parityspec-no-such-dist")
    monkeypatch.setattr(BACKENDS["onnx"], "LIBRARIES", declared)
    after = {s.id: s.key for s in compile_plan(churn).steps}
    assert before.keys() == after.keys()
    assert all(before[step] != after[step] for step in before)


def test_every_key_hashes_parityspecs_own_code(churn, tmp_path, monkeypatch):
    """An install from another commit keeps the version number: its code is in the keys, so
    nothing the other code computed is restored."""
    import shutil

    from parityspec import lineage

    before = {s.id: s.key for s in compile_plan(churn).steps}
    package = tmp_path / "parityspec"
    shutil.copytree(Path(lineage.__file__).parent, package, ignore=shutil.ignore_patterns("*.pyc"))
    monkeypatch.setattr(lineage, "__file__", str(package / "lineage.py"))
    lineage.code_digest.cache_clear()
    try:
        assert {s.id: s.key for s in compile_plan(churn).steps} == before  # the same code
        with (package / "checks" / "label_agreement.py").open("a") as module:
            module.write("# a change\n")
        lineage.code_digest.cache_clear()
        after = {s.id: s.key for s in compile_plan(churn).steps}
    finally:
        lineage.code_digest.cache_clear()
    assert all(before[step] != after[step] for step in before)


def test_a_cycle_is_a_named_error():
    steps = [Step("a", "x", ("b",)), Step("b", "x", ("c",)), Step("c", "x", ("a",))]
    with pytest.raises(CycleError, match="a -> b -> c -> a"):
        topological_order(steps)


def test_plan_command_prints_text_and_mermaid(invoke):
    text = invoke("plan", SPECS / "churn.yaml")
    assert (
        text.exit_code == 0 and "quantize:int8" in text.output and "<- export:onnx" in text.output
    )
    mermaid = invoke("plan", SPECS / "churn.yaml", "--format", "mermaid", "--check", "int8-parity")
    assert mermaid.exit_code == 0 and mermaid.output.startswith("flowchart LR")
    assert "onnx-labels" not in mermaid.output


def test_mermaid_has_one_edge_per_dependency(churn):
    plan = compile_plan(churn)
    assert as_mermaid(plan).count("-->") == sum(len(s.deps) for s in plan.steps)


def test_unknown_check_is_a_usage_error_with_a_hint(invoke):
    result = invoke("plan", SPECS / "churn.yaml", "--check", "onnx-parity2")
    assert result.exit_code == 2
    assert "did you mean 'onnx-parity'" in result.output


def test_a_benchmark_check_needs_models_not_predictions():
    spec = load_spec(SPECS / "mlp_int8.yaml").spec
    plan = compile_plan(spec, ["int8-benchmark"])
    assert not [step for step in plan.ids if step.startswith("predict:")]
    assert plan["check:int8-benchmark"].deps == ("export:onnx", "quantize:int8", "data:split")
