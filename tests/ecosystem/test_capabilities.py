"""Declared capabilities: optional hooks with defaults, offers asked for instead of kind names,
and a plugin backend kind derived from `onnx` through its own hook."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from parityspec.backends import BACKENDS, key_libraries
from parityspec.backends.base import LoadedModel, Needs, Offer, capabilities
from parityspec.checks import CHECKS
from parityspec.checks.capabilities import check_capabilities
from parityspec.errors import SpecError
from parityspec.lineage import CORE_LIBRARIES
from parityspec.spec.load import load_spec
from tests.conftest import REPO
from tests.ecosystem.demo_plugin import install


def test_a_module_declaring_no_hook_gets_the_defaults():
    caps = capabilities(ModuleType("bare"))
    assert caps.offers == {Offer.TABULAR, Offer.TENSORS}
    assert (caps.DERIVED_FROM, caps.export_onnx, caps.reopen, caps.LIBRARIES) == (
        None,
        None,
        None,
        (),
    )
    model = LoadedModel("bare", "bare", predictor={"weights": [1.0, 2.0]})
    assert caps.model_size(model) == len(pickle.dumps(model.predictor, protocol=5))


def test_an_export_is_offered_exactly_when_there_is_export_onnx():
    module = ModuleType("exporting")
    module.OFFERS = frozenset({Offer.TABULAR, Offer.ONNX_EXPORT})
    assert capabilities(module).offers == {Offer.TABULAR}
    module.export_onnx = lambda *args: Path("model.onnx")
    assert capabilities(module).offers == {Offer.TABULAR, Offer.ONNX_EXPORT}


def test_needs_are_met_by_what_is_offered_and_not_refused():
    float_graph = Needs(frozenset({Offer.ONNX_GRAPH}), none_of=frozenset({Offer.QUANTIZED_GRAPH}))
    assert float_graph.met_by(frozenset({Offer.ONNX_GRAPH, Offer.TABULAR}))
    assert not float_graph.met_by(frozenset({Offer.ONNX_GRAPH, Offer.QUANTIZED_GRAPH}))
    assert not float_graph.met_by(frozenset({Offer.TABULAR}))
    assert str(float_graph) == "onnx_graph, not quantized_graph"


def test_the_builtin_derivations_come_from_the_kinds_declarations():
    """What `DERIVABLE_FROM` in spec/semantic.py used to list, now asked of the modules."""
    accepted = {
        kind: needs.kinds(BACKENDS)
        for kind, module in BACKENDS.items()
        if (needs := capabilities(module).DERIVED_FROM)
    }
    assert accepted == {
        "onnx": ["catboost", "lightgbm", "sklearn", "torch", "xgboost"],
        "quantized": ["onnx"],
        "onnx_reference": ["float16", "onnx", "quantized"],
        "float16": ["onnx"],
    }


def test_cache_keys_hash_the_libraries_they_always_did():
    """The core libraries and those the built-in kinds declare are the list lineage held
    before: the keys of built-in steps did not change."""
    assert CORE_LIBRARIES == ("parityspec", "numpy", "pandas")
    assert set(key_libraries()) == {
        "parityspec",
        "numpy",
        "pandas",
        "scikit-learn",
        "skl2onnx",
        "onnx",
        "onnxruntime",
        "torch",
        # The gradient-boosting kinds: xgboost ships as either distribution.
        "xgboost",
        "xgboost-cpu",
        "lightgbm",
        "onnxmltools",
        "catboost",
    }
    assert len(key_libraries()) == len(set(key_libraries()))


def test_checks_declare_what_they_need_from_models():
    assert check_capabilities(CHECKS["benchmark"]).NEEDS_PREDICTIONS is False
    assert check_capabilities(CHECKS["probability_parity"]).NEEDS_MODELS is False
    needs = {t: check_capabilities(m).MODEL_NEEDS for t, m in CHECKS.items()}
    kinds = {t: [n.kinds(BACKENDS) for n in pair] for t, pair in needs.items()}
    graphs = ["float16", "onnx", "quantized"]
    assert kinds["layer_drift"] == [["torch"], graphs]
    assert kinds["tensor_drift"] == [graphs, graphs]
    assert kinds["step_drift"] == [["sklearn"], ["float16", "onnx"]]
    assert kinds["probability_parity"] == [sorted(BACKENDS)] * 2


TENSOR_SPEC = """\
parityspec: 1
name: needs
data: {synthetic: {rows: 8}}
model: {task: tensor, inputs: [{name: x, shape: [4]}]}
backends:
  torch: {kind: torch, module: nets.py:mlp}
  onnx: {kind: onnx, from: torch}
  int8: {kind: quantized, from: onnx}
checks:
  - {id: layers, type: layer_drift, between: [onnx, torch]}
"""
TABULAR_SPEC = """\
parityspec: 1
name: needs
data: {sklearn: iris}
model: {task: multiclass}
backends:
  sk: {kind: sklearn, train: models.py:mlp}
  onnx: {kind: onnx, from: sk}
  int8: {kind: quantized, from: onnx}
  net: {kind: torch, module: nets.py:mlp}
checks:
  - {id: steps, type: step_drift, between: [sk, int8]}
"""


def _problems(tmp_path: Path, text: str) -> list[str]:
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    with pytest.raises(SpecError) as raised:
        load_spec(spec, check_files=False)
    return [f"{p.key}: {p.message} (hint: {p.hint})" for p in raised.value.problems]


def test_a_check_on_backends_that_lack_what_it_needs_is_invalid(tmp_path):
    assert _problems(tmp_path, TENSOR_SPEC) == [
        "checks[0].between[0]: layer_drift needs a reference backend offering layers; "
        "'onnx' is of kind 'onnx' (hint: kinds that do: torch)",
        "checks[0].between[1]: layer_drift needs a candidate backend offering onnx_graph; "
        "'torch' is of kind 'torch' (hint: kinds that do: float16, onnx, quantized)",
    ]
    # (torch serves table rows too since issue 13.5: only the check's need is left.)
    assert _problems(tmp_path, TABULAR_SPEC) == [
        "checks[0].between[1]: step_drift needs a candidate backend offering onnx_graph, "
        "not quantized_graph; 'int8' is of kind 'quantized' (hint: kinds that do: float16, onnx)",
    ]


# The plugin's spec: its kind made from `onnx`, the built-in `quantized` made from it, and
# built-in checks that ask for an ONNX graph, not for a kind.
PLUGIN_SPEC = """\
parityspec: 1
name: optimized
data: {sklearn: iris, split: {test_size: 0.3, seed: 0}}
model: {task: multiclass}
backends:
  mlp: {kind: sklearn, train: models.py:mlp}
  onnx: {kind: onnx, from: mlp}
  fast: {kind: ort_optimized, from: onnx}
  int8: {kind: quantized, from: fast}
checks:
  - {id: fast-parity, type: probability_parity, between: [onnx, fast], profile: strict}
  - {id: fast-tensors, type: tensor_drift, between: [onnx, fast]}
report: {dir: out}
"""
BUILDER = """\
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def mlp():
    return make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0)
    )
"""
# A fresh interpreter: the registries and the spec models are built at import.
SCRIPT = """\
import json, sys
from pathlib import Path
from click.testing import CliRunner
from parityspec.cli import cli
done = []
for args in json.loads(sys.argv[1]):
    result = CliRunner().invoke(cli, args)
    report = Path(sys.argv[2]).read_text() if args[0] == "run" else None
    done.append([result.exit_code, result.output, report])
print(json.dumps(done))
"""


@pytest.mark.slow
def test_a_plugin_kind_derived_from_onnx_validates_and_runs_cold_and_warm(tmp_path):
    plugin_env = install(tmp_path / "site")
    (tmp_path / "models.py").write_text(BUILDER)
    good, bad = tmp_path / "optimized.yaml", tmp_path / "from_sklearn.yaml"
    good.write_text(PLUGIN_SPEC)
    bad.write_text(
        PLUGIN_SPEC.replace(
            "fast: {kind: ort_optimized, from: onnx}", "fast: {kind: ort_optimized, from: mlp}"
        )
    )
    env = {**plugin_env, "PARITYSPEC_CACHE_DIR": str(tmp_path / "cache")}
    calls = [["schema"], ["validate", str(good)], ["validate", str(bad)], ["run", str(good)]]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            json.dumps([*calls, ["run", str(good)]]),
            str(tmp_path / "out" / "report.json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
        check=True,
    )
    schema, valid, invalid, cold, warm = json.loads(done.stdout)
    assert schema[0] == 0 and '"ort_optimized"' in schema[1]
    assert valid[0] == 0, valid[1]
    assert invalid[0] == 2
    assert (
        "backends.fast.from: backend kind 'ort_optimized' cannot be made from 'mlp' "
        "(kind 'sklearn') (hint: `from` must name a backend of kind float16 or onnx or "
        "ort_optimized)"
    ) in invalid[1]
    assert cold[0] == 0 and warm[0] == 0, cold[1] + warm[1]
    report, rerun = json.loads(cold[2]), json.loads(warm[2])
    fast = report["backends"]["fast"]
    assert (fast["kind"], fast["step"]) == ("ort_optimized", "convert:fast")
    # ONNX Runtime's basic level drops the graph's redundant Cast, and nothing changes.
    assert fast["facts"]["nodes"] < fast["facts"]["source_nodes"]
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["fast-parity"]["status"] == "passed"
    assert checks["fast-parity"]["figures"]["max_abs_diff"] == 0.0
    assert checks["fast-tensors"]["status"] == "passed"
    # Warm: the plugin's model comes back through its own `reopen`, and so does the report.
    assert {"convert:fast", "predict:fast"} <= set(rerun["run"]["from_cache"])
    assert {k: v for k, v in rerun.items() if k != "run"} == {
        k: v for k, v in report.items() if k != "run"
    }


def test_the_report_names_every_library_that_enters_the_cache_keys(invoke, tmp_path):
    out = tmp_path / "out"
    result = invoke("run", REPO / "specs" / "iris.yaml", "--out", out, "--check", "logreg-parity")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert set(report["lineage"]["libraries"]) == set(key_libraries())
