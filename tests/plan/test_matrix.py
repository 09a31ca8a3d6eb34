"""Backend matrices: the expansion, its stable ids and keys, and each bad matrix at validate."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from parityspec.errors import SpecError
from parityspec.plan.compile import compile_plan, model_step_id
from parityspec.plan.render import as_text
from parityspec.spec.load import load_spec
from parityspec.spec.matrix import MAX_COMBINATIONS, sweep_of
from tests.conftest import REPO, SPECS

TRAIN = REPO / "examples" / "churn" / "train.py"


def write_spec(folder: Path, int8: dict, *, checks: list | None = None, extra: dict | None = None):
    """A churn spec whose `int8` backend is `int8` (plus `extra` backends)."""
    document = {
        "parityspec": 1,
        "name": "sweep",
        "data": {"path": str(REPO / "examples/churn/churn.csv"), "target": "churned"},
        "model": {"task": "binary"},
        "backends": {
            "sklearn": {"kind": "sklearn", "train": f"{TRAIN}:build_pipeline"},
            "onnx": {"kind": "onnx", "from": "sklearn"},
            "int8": {"kind": "quantized", "from": "onnx", **int8},
            **(extra or {}),
        },
        "checks": checks
        or [{"id": "int8-parity", "type": "probability_parity", "between": ["onnx", "int8"]}],
    }
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    return [p.format() for p in raised.value.problems]


def test_a_matrix_expands_to_one_backend_and_one_check_per_combination(tmp_path):
    matrix = {"method": ["dynamic", "static"], "per_channel": [False, True]}
    spec = load_spec(write_spec(tmp_path, {"matrix": matrix})).spec
    assert [n for n in spec.backends if n.startswith("int8")] == [
        "int8[method=dynamic,per_channel=false]",
        "int8[method=dynamic,per_channel=true]",
        "int8[method=static,per_channel=false]",
        "int8[method=static,per_channel=true]",
    ]
    static = spec.backends["int8[method=static,per_channel=true]"]
    assert (static.method, static.per_channel, static.matrix) == ("static", True, None)
    assert [c.id for c in spec.checks][2] == "int8-parity[method=static,per_channel=false]"
    assert spec.checks[2].between == ["onnx", "int8[method=static,per_channel=false]"]


def test_exclude_drops_the_combinations_it_matches(tmp_path):
    int8 = {
        "matrix": {"method": ["dynamic", "static"], "per_channel": [False, True]},
        "exclude": [{"method": "dynamic", "per_channel": True}],
    }
    spec = load_spec(write_spec(tmp_path, int8)).spec
    assert "int8[method=dynamic,per_channel=true]" not in spec.backends
    assert [c.id for c in spec.checks] == [
        "int8-parity[method=dynamic,per_channel=false]",
        "int8-parity[method=static,per_channel=false]",
        "int8-parity[method=static,per_channel=true]",
    ]


def test_a_derived_backend_follows_its_source_and_a_check_pairs_matching_combinations(tmp_path):
    extra = {"oracle": {"kind": "onnx_reference", "from": "int8", "max_rows": 50}}
    checks = [{"id": "kernels", "type": "probability_parity", "between": ["oracle", "int8"]}]
    spec = load_spec(
        write_spec(
            tmp_path, {"matrix": {"method": ["dynamic", "static"]}}, checks=checks, extra=extra
        )
    ).spec
    oracle = spec.backends["oracle[method=static]"]
    assert oracle.from_ == "int8[method=static]"
    # Paired on the shared axis, not crossed: 2 checks, not 4.
    assert [(c.id, c.between) for c in spec.checks] == [
        ("kernels[method=dynamic]", ["oracle[method=dynamic]", "int8[method=dynamic]"]),
        ("kernels[method=static]", ["oracle[method=static]", "int8[method=static]"]),
    ]
    plan = compile_plan(spec)
    step = plan[model_step_id(spec, "oracle[method=static]")]
    assert "quantize:int8[method=static]" in step.deps


def test_two_axes_of_one_field_are_told_apart_by_their_backend(tmp_path):
    extra = {
        "int8b": {
            "kind": "quantized",
            "from": "onnx",
            "matrix": {"method": ["dynamic", "static"]},
        }
    }
    checks = [{"id": "both", "type": "probability_parity", "between": ["int8", "int8b"]}]
    spec = load_spec(
        write_spec(tmp_path, {"matrix": {"method": ["dynamic"]}}, checks=checks, extra=extra)
    ).spec
    assert [c.id for c in spec.checks] == [
        "both[int8.method=dynamic,int8b.method=dynamic]",
        "both[int8.method=dynamic,int8b.method=static]",
    ]
    sweep = sweep_of(spec)
    assert sweep is not None
    assert sweep.checks[0].axes == ("int8.method", "int8b.method")


def test_a_spec_without_a_matrix_is_not_touched():
    loaded = load_spec(SPECS / "churn.yaml")
    assert sweep_of(loaded.spec) is None
    assert "int8" in loaded.spec.backends
    assert "matrix" not in loaded.spec.backends["int8"].model_dump(by_alias=True)


def test_adding_a_value_keeps_every_other_combination_s_keys(tmp_path):
    first = tmp_path / "a"
    second = tmp_path / "b"
    first.mkdir(), second.mkdir()
    one = load_spec(write_spec(first, {"matrix": {"method": ["dynamic"]}}))
    two = load_spec(write_spec(second, {"matrix": {"method": ["dynamic", "static"]}}))
    keys_one = {s.id: s.key for s in compile_plan(one.spec, None, one.directory).steps}
    keys_two = {s.id: s.key for s in compile_plan(two.spec, None, two.directory).steps}
    kept = {i for i in keys_one if i != "report"}
    assert {i: keys_two[i] for i in kept} == {i: keys_one[i] for i in kept}
    added = set(keys_two) - set(keys_one)
    assert added == {
        "quantize:int8[method=static]",
        "predict:int8[method=static]",
        "check:int8-parity[method=static]",
    }


def test_a_serve_batch_size_value_can_change_the_shared_batch_and_every_predict_key(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    one = load_spec(write_spec(first, {"matrix": {"serve_batch_size": [100]}}))
    two = load_spec(write_spec(second, {"matrix": {"serve_batch_size": [100, 300]}}))
    assert (one.spec.prediction_batch_size(), two.spec.prediction_batch_size()) == (65500, 65400)
    key_one = compile_plan(one.spec, None, one.directory)["predict:onnx"].key
    assert compile_plan(two.spec, None, two.directory)["predict:onnx"].key != key_one


def test_plan_text_shows_the_expansion(tmp_path):
    loaded = load_spec(write_spec(tmp_path, {"matrix": {"per_channel": [False, True]}}))
    text = as_text(compile_plan(loaded.spec), loaded.spec.name)
    assert "quantize:int8[per_channel=true]" in text
    assert "matrix: backend int8 -> 2 combinations: per_channel=false; per_channel=true" in text
    assert "matrix: check int8-parity -> 2 checks" in text


def test_plan_cli_lists_every_combination(invoke):
    result = invoke("plan", SPECS / "churn_sweep.yaml")
    assert result.exit_code == 0
    sweep = load_spec(SPECS / "churn_sweep.yaml").spec
    for name in sweep.backends:
        if name.startswith("int8["):
            assert f"quantize:{name}" in result.stdout


def test_check_selects_one_combination_by_its_id(invoke):
    chosen = "int8-parity[method=static,per_channel=true,graph_optimization_level=all]"
    result = invoke("plan", SPECS / "churn_sweep.yaml", "--check", chosen)
    assert result.exit_code == 0
    checks = [line for line in result.stdout.splitlines() if ". check:" in line]
    assert len(checks) == 1 and f"check:{chosen}" in checks[0]


def test_check_by_its_own_id_selects_every_combination(invoke):
    result = invoke("plan", SPECS / "churn_sweep.yaml", "--check", "int8-parity")
    assert result.exit_code == 0, result.output
    checks = [line for line in result.stdout.splitlines() if ". check:" in line]
    assert len(checks) == 6 and all("check:int8-parity[" in line for line in checks)


def test_a_swept_spec_dumps_as_written(tmp_path):
    int8 = {"matrix": {"method": ["dynamic", "static"]}, "exclude": [{"method": "static"}]}
    loaded = load_spec(write_spec(tmp_path, int8))
    dumped = loaded.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert list(dumped["backends"]) == ["sklearn", "onnx", "int8"]
    assert dumped["backends"]["int8"]["matrix"] == {"method": ["dynamic", "static"]}
    assert "method" not in dumped["backends"]["int8"]  # its values live in the matrix


# --- Bad matrices: one located line each, with a hint ---

BAD = {
    "unknown field": (
        {"matrix": {"methd": ["dynamic"]}},
        "backends.int8.matrix.methd: backend kind 'quantized' has no field 'methd' "
        "(hint: did you mean 'method'?)",
    ),
    "wrong type": (
        {"matrix": {"per_channel": [False, "yes"]}},
        "backends.int8.matrix.per_channel[1]: 'yes': input should be a valid boolean "
        "(hint: each value must be valid for the field)",
    ),
    "wrong literal": (
        {"matrix": {"method": ["dynamic", "statc"]}},
        "backends.int8.matrix.method[1]: 'statc': input should be 'dynamic' or 'static' "
        "(hint: one of: 'dynamic' or 'static')",
    ),
    "wrong first value": (
        {"matrix": {"method": ["statc", "dynamic"]}},
        "backends.int8.matrix.method[0]: 'statc' is not allowed (hint: did you mean 'static'?)",
    ),
    "empty list": (
        {"matrix": {"method": []}},
        "backends.int8.matrix.method: no values to sweep (hint: list at least one value of method)",
    ),
    "exclude matching nothing": (
        {"matrix": {"method": ["dynamic", "static"]}, "exclude": [{"method": "dynamc"}]},
        "backends.int8.exclude[0].method: exclude matches nothing: 'dynamc' is not among the "
        "values of method (hint: its values: dynamic, static)",
    ),
    "exclude of an unswept field": (
        {"matrix": {"method": ["dynamic", "static"]}, "exclude": [{"per_channel": True}]},
        "backends.int8.exclude[0].per_channel: exclude names 'per_channel', which the matrix "
        "does not sweep (hint: swept: method)",
    ),
    "exclude without a matrix": (
        {"exclude": [{"method": "static"}]},
        "backends.int8.exclude: exclude without a matrix (hint: add `matrix:`, or remove it)",
    ),
    "everything excluded": (
        {"matrix": {"method": ["dynamic"]}, "exclude": [{"method": "dynamic"}]},
        "backends.int8.exclude: exclude removes every combination (hint: exclude fewer)",
    ),
    "set and swept": (
        {"method": "static", "matrix": {"method": ["dynamic", "static"]}},
        "backends.int8.matrix.method: 'method' is both set (method: static) and swept "
        "(hint: remove `method:` or its matrix entry)",
    ),
    "from swept": (
        {"matrix": {"from": ["onnx"]}},
        "backends.int8.matrix.from: 'from' cannot be swept (hint: sweep how a backend is "
        "made, not what)",
    ),
    "kind swept": (
        {"matrix": {"kind": ["quantized"]}},
        "backends.int8.matrix.kind: 'kind' cannot be swept (hint: sweep how a backend is "
        "made, not what)",
    ),
    "a value twice": (
        {"matrix": {"method": ["static", "static"]}},
        "backends.int8.matrix.method[1]: 'static' is listed twice (also item 0) "
        "(hint: list each value once)",
    ),
    "too many": (
        {"matrix": {"calibration_rows": list(range(1, MAX_COMBINATIONS + 2))}},
        f"backends.int8.matrix: backend 'int8' expands to {MAX_COMBINATIONS + 1} "
        f"combinations, more than the limit of {MAX_COMBINATIONS} (hint: exclude "
        "combinations, or split the sweep into several specs)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_matrix_is_one_located_problem_with_a_hint(tmp_path, case):
    int8, expected = BAD[case]
    found = problems(write_spec(tmp_path, int8))
    assert len(found) == 1, found
    assert found[0].split(": ", 1)[1] == expected
    assert found[0].startswith(f"{tmp_path / 'sweep.yaml'}:")  # with line and column


def test_a_check_crossing_two_matrices_is_held_to_the_limit(tmp_path):
    eight = {"calibration_rows": list(range(1, 9))}
    extra = {
        "int8b": {
            "kind": "quantized",
            "from": "onnx",
            "matrix": {"calibration_rows": list(range(1, 10))},
        }
    }
    checks = [{"id": "cross", "type": "probability_parity", "between": ["int8", "int8b"]}]
    found = problems(write_spec(tmp_path, {"matrix": eight}, checks=checks, extra=extra))
    assert len(found) == 1
    assert found[0].split(": ", 1)[1] == (
        f"checks[0].between: check 'cross' expands to 72 combinations, more than the limit of "
        f"{MAX_COMBINATIONS} (hint: exclude combinations, or split the sweep into several specs)"
    )


def test_values_valid_alone_but_refused_together_name_their_combination(tmp_path):
    extra = {
        "net": {
            "kind": "torch",
            "module": f"{REPO / 'examples/churn/torch_mlp.py'}:churn_mlp",
            "matrix": {"returns": ["logits", "probabilities"], "activation": [None, "sigmoid"]},
        }
    }
    checks = [{"id": "net", "type": "probability_parity", "between": ["onnx", "net"]}]
    found = problems(write_spec(tmp_path, {}, checks=checks, extra=extra))
    assert [f.split(": ", 1)[1] for f in found] == [
        "backends.net.matrix: the combination net[returns=probabilities,activation=sigmoid] "
        "is refused: activation applies to logits only (returns: logits) "
        "(hint: exclude it, or change the values)"
    ]
    extra["net"]["exclude"] = [{"returns": "probabilities", "activation": "sigmoid"}]
    spec = load_spec(write_spec(tmp_path, {}, checks=checks, extra=extra)).spec
    assert [n for n in spec.backends if n.startswith("net")] == [
        "net[returns=logits,activation=null]",
        "net[returns=logits,activation=sigmoid]",
        "net[returns=probabilities,activation=null]",
    ]


def test_a_rule_broken_by_one_combination_is_located_at_its_value(tmp_path):
    (tmp_path / "here.onnx").write_bytes(b"")
    extra = {"file": {"kind": "onnx", "matrix": {"path": ["here.onnx", "gone.onnx"]}}}
    checks = [{"id": "f", "type": "probability_parity", "between": ["onnx", "file"]}]
    found = problems(write_spec(tmp_path, {}, checks=checks, extra=extra))
    assert [f.split(": ", 1)[1] for f in found] == [
        "backends.file.matrix.path[1]: file not found: gone.onnx "
        f"(hint: paths are relative to the spec's folder ({tmp_path.name}/))"
    ]


def test_validate_cli_exits_2_with_one_line(invoke, tmp_path):
    path = write_spec(tmp_path, {"matrix": {"methd": ["dynamic"]}})
    result = invoke("validate", path)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if "methd" in line]
    assert len(lines) == 1 and "backends.int8.matrix.methd" in lines[0]
    assert "hint: did you mean 'method'?" in lines[0] and "Traceback" not in result.output
