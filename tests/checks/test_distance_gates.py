"""Distance metrics as optional gates (issue 16.7): KL and Jensen-Shannon divergence and the
log-loss delta on probabilities, cosine similarity, relative L2, PSNR and SNR on tensors.

Each figure is held to an independent formula (scipy, scikit-learn, or numpy over the whole
array where the check accumulates batch by batch); a gate left off (strict, default) adds no
figure and no tolerance to the report; NaN and Inf never pass one."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from parityspec.checks import output_parity, probability_parity
from parityspec.data import Dataset
from tests.checks.conftest import run_check

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

PROBABILITY_FIGURES = {"kl_divergence", "js_divergence", "log_loss_delta"}
TENSOR_FIGURES = {"cosine_similarity", "relative_l2", "psnr_db", "snr_db"}


def _probabilities(rows: int, classes: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = rng.random((rows, classes)) + 0.05
    return raw / raw.sum(axis=1, keepdims=True)


def _pair(rows: int = 50, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    p = _probabilities(rows, classes, 0)
    q = p * np.exp(np.random.default_rng(1).normal(0, 0.05, p.shape))
    return p, q / q.sum(axis=1, keepdims=True)


def _truth_data(codes: np.ndarray) -> Dataset:
    rows = len(codes)
    features = pd.DataFrame({"f0": np.arange(rows, dtype=float)})
    return Dataset(features, target=codes, classes=np.unique(codes))


def test_probability_figures_match_scipy_and_sklearn():
    from scipy.spatial.distance import jensenshannon
    from scipy.special import rel_entr
    from sklearn.metrics import log_loss

    p, q = _pair()
    codes = np.arange(len(p)) % 3
    result = run_check(
        probability_parity,
        p,
        q,
        task="multiclass",
        check={"profile": "lenient", "max_kl_divergence": 0.01, "max_log_loss_delta": 1.0},
        data=_truth_data(codes),
        batch_size=7,  # the sums cross batches
    )
    figures = result.figures
    assert figures["kl_divergence"] == pytest.approx(rel_entr(p, q).sum(axis=1).mean(), rel=1e-9)
    js = jensenshannon(p, q, axis=1) ** 2  # scipy's is the square root, base e
    assert figures["js_divergence"] == pytest.approx(js.mean(), rel=1e-9)
    labels = [0, 1, 2]
    delta = log_loss(codes, q, labels=labels) - log_loss(codes, p, labels=labels)
    assert figures["log_loss_delta"] == pytest.approx(delta, rel=1e-9)
    assert result.status == "passed"
    assert {g.limit for g in result.gates} >= {"max_kl_divergence", "max_js_divergence"}


def test_strict_and_default_add_no_figure_or_tolerance():
    p, q = _pair()
    for profile in ("strict", "default"):
        result = run_check(probability_parity, p, q, check={"profile": profile})
        assert not PROBABILITY_FIGURES & set(result.figures)
        assert set(result.tolerances) == {"abs_tol", "mean_tol"}
        assert [g.limit for g in result.gates] == ["abs_tol", "mean_tol"]


def test_a_divergence_over_its_gate_fails_naming_it():
    p, q = _pair()
    result = run_check(probability_parity, p, q, check={"max_kl_divergence": 1e-6})
    assert result.status == "failed"
    assert "kl_divergence" in result.reason and "max_kl_divergence 1e-06" in result.reason
    assert result.tolerances["max_kl_divergence"] == 1e-6


def test_a_class_only_the_candidate_drops_is_an_infinite_kl():
    p = np.array([[0.5, 0.5], [0.2, 0.8]])
    q = np.array([[1.0, 0.0], [0.2, 0.8]])
    result = run_check(
        probability_parity,
        p,
        q,
        check={"profile": "lenient", "max_kl_divergence": 0.01},
        tolerances={"abs_tol": 1.0, "mean_tol": 1.0},
    )
    assert result.figures["kl_divergence"] == math.inf
    assert result.status == "failed"
    # JS stays finite: it is bounded by ln 2.
    assert 0 < result.figures["js_divergence"] < math.log(2)


def test_the_log_loss_gate_needs_ground_truth():
    from parityspec.errors import InputError

    p, q = _pair()
    with pytest.raises(InputError, match="needs ground truth"):
        run_check(probability_parity, p, q, task="multiclass", check={"max_log_loss_delta": 0.1})


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_nonfinite_probabilities_fail_every_distance_gate(value):
    p, q = _pair()
    q[3, 0] = value
    loosest = {"abs_tol": 1e300, "mean_tol": 1e300}
    gates = {"max_kl_divergence": 1e300, "max_js_divergence": 1e300, "max_log_loss_delta": 1e300}
    result = run_check(
        probability_parity,
        p,
        q,
        task="multiclass",
        check=gates,
        tolerances=loosest,
        data=_truth_data(np.arange(len(p)) % 3),
    )
    assert result.status == "failed"
    assert all(not g.ok for g in result.gates if g.limit in gates)


def _tensors(shape=(40, 3, 5), noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=shape)
    return a, a + rng.normal(0, noise, size=shape)


GATES_ON = {
    "min_cosine_similarity": -1.0,
    "max_relative_l2": 1e300,
    "min_psnr_db": -1e300,
    "min_snr_db": -1e300,
}


def test_tensor_figures_match_numpy_over_the_whole_output():
    a, b = _tensors()
    result = run_check(
        output_parity, a, b, task="tensor", check=GATES_ON, tolerances={"atol": 1.0}, batch_size=3
    )
    figures = result.figures
    x, y = a.ravel(), b.ravel()
    assert figures["cosine_similarity"] == pytest.approx(
        x @ y / np.linalg.norm(x) / np.linalg.norm(y), rel=1e-12
    )
    assert figures["relative_l2"] == pytest.approx(np.linalg.norm(x - y) / np.linalg.norm(x))
    mse = np.mean((x - y) ** 2)
    assert figures["psnr_db"] == pytest.approx(10 * np.log10(np.max(np.abs(x)) ** 2 / mse))
    assert figures["snr_db"] == pytest.approx(10 * np.log10(np.sum(x**2) / np.sum((x - y) ** 2)))
    assert result.status == "passed"


def test_lenient_gates_on_polygraphys_defaults():
    a, b = _tensors(noise=0.3)  # SNR about 10 dB: under lenient's 20
    result = run_check(
        output_parity, a, b, task="tensor", check={"profile": "lenient"}, tolerances={"atol": 10.0}
    )
    assert result.tolerances["min_cosine_similarity"] == 0.997
    assert (result.tolerances["min_psnr_db"], result.tolerances["min_snr_db"]) == (30.0, 20.0)
    assert "max_relative_l2" not in result.tolerances  # off: SNR 20 dB is relative L2 0.1
    assert result.status == "failed"
    assert "snr_db" in result.reason and "min_snr_db 20" in result.reason
    assert 9 < result.figures["snr_db"] < 11


def test_default_adds_no_tensor_figure():
    a, b = _tensors()
    result = run_check(output_parity, a, b, task="tensor", tolerances={"atol": 1.0})
    assert not TENSOR_FIGURES & set(result.figures)
    assert set(result.tolerances) == {"atol", "rtol", "max_violation_fraction"}


def test_identical_and_zero_outputs():
    a, _ = _tensors()
    same = run_check(output_parity, a, a.copy(), task="tensor", check=GATES_ON).figures
    assert (same["cosine_similarity"], same["relative_l2"]) == (1.0, 0.0)
    assert same["psnr_db"] == same["snr_db"] == "inf"  # JSON holds no Inf: written as text
    zeros = np.zeros((4, 3))
    both = run_check(output_parity, zeros, zeros.copy(), task="tensor", check=GATES_ON)
    assert both.status == "passed" and both.figures["cosine_similarity"] == 1.0
    one = run_check(
        output_parity,
        zeros,
        np.ones((4, 3)),
        task="tensor",
        check={"min_cosine_similarity": 0.5, "atol": 2.0},
    )
    assert one.status == "failed" and one.figures["cosine_similarity"] == 0.0


def test_per_output_gates_name_their_output():
    a, b = _tensors(noise=0.3)
    c, d = _tensors(seed=1, noise=1e-4)
    result = run_check(
        output_parity,
        {"x": a, "y": c},
        {"x": b, "y": d},
        task="tensor",
        check={"min_snr_db": 40.0, "atol": 10.0, "per_output": {"x": {"min_snr_db": 5.0}}},
    )
    assert result.status == "passed", result.reason
    snr = {g.figure: g.limit_value for g in result.gates if g.limit == "min_snr_db"}
    assert snr == {"x.snr_db": 5.0, "y.snr_db": 40.0}


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("side", [0, 1])
def test_nonfinite_tensors_fail_every_distance_gate(value, side):
    pair = list(_tensors())
    pair[side][2, 1, 1] = value
    result = run_check(
        output_parity, *pair, task="tensor", check=GATES_ON, tolerances={"atol": 1e300}
    )
    assert result.status == "failed"
    assert all(not g.ok for g in result.gates if g.limit in GATES_ON)
    assert all(result.figures[f] == "nan" for f in TENSOR_FIGURES)  # JSON's text for NaN
