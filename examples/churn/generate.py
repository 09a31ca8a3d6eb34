"""Deterministic generator for the bundled telecom churn example.

Writes ``churn.csv`` next to this file: 6,000 customers, numeric and
categorical features (with missing values and rare categories) and an
imbalanced binary target ``churned`` drawn from a noisy logistic model.

Only ``numpy.random.default_rng(SEED)`` is used for randomness, and the CSV is
written by hand with fixed formatting, so running this script always produces
a byte-identical file::

    python examples/churn/generate.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from train import CATEGORICAL, NUMERIC, TARGET  # the builders' column lists, one source

# Chosen (with scikit-learn 1.9 / skl2onnx 1.20 / onnxruntime 1.32) so that, on the
# parityspec 80/20 split (random_state=7), the random-forest pipeline shows the real
# float32-scaler discrepancy clearly (max |dp| 0.09 > 0.04) while the MLP stays at ~1e-7.
SEED = 38
N_ROWS = 6_000
OUTPUT = Path(__file__).with_name("churn.csv")

COLUMNS = NUMERIC + CATEGORICAL + [TARGET]

# Columns written as integers (all others numeric are written with 2 decimals).
INTEGER_COLUMNS = {"tenure_months", "support_calls", "age"}


def _choice(rng: np.random.Generator, levels: dict[str, float], n: int) -> np.ndarray:
    names = np.array(list(levels), dtype=object)
    probs = np.array(list(levels.values()), dtype=float)
    return names[rng.choice(len(names), size=n, p=probs / probs.sum())]


def _missing(rng: np.random.Generator, values: np.ndarray, rate: float) -> np.ndarray:
    out = values.astype(float).copy()
    out[rng.random(len(out)) < rate] = np.nan
    return out


def generate(n: int = N_ROWS, seed: int = SEED) -> dict[str, np.ndarray]:
    """Return the data set as a dict of column name -> numpy array."""
    rng = np.random.default_rng(seed)

    contract = _choice(rng, {"month-to-month": 0.55, "one-year": 0.24, "two-year": 0.21}, n)
    internet_service = _choice(
        rng, {"fiber optic": 0.44, "dsl": 0.34, "no internet": 0.213, "satellite": 0.007}, n
    )
    payment_method = _choice(
        rng,
        {
            "electronic check": 0.33,
            "mailed check": 0.22,
            "bank transfer": 0.22,
            "credit card": 0.224,
            "cryptocurrency": 0.006,
        },
        n,
    )
    region = _choice(
        rng, {"north": 0.27, "south": 0.30, "east": 0.22, "west": 0.204, "islands": 0.006}, n
    )

    # Tenure: longer contracts go with longer-standing customers.
    tenure_scale = np.select(
        [contract == "month-to-month", contract == "one-year"], [9.0, 16.0], 22.0
    )
    tenure_months = np.clip(np.round(rng.gamma(1.6, tenure_scale)), 0, 72).astype(int)

    # Monthly charges depend on the internet service tier.
    base = np.select(
        [
            internet_service == "fiber optic",
            internet_service == "dsl",
            internet_service == "satellite",
        ],
        [88.0, 57.0, 74.0],
        21.0,
    )
    spread = np.where(internet_service == "no internet", 2.5, 12.0)
    # Plan prices move in 0.05 steps (as in the classic IBM telco data set).
    monthly_charges = (
        np.round(np.clip(base + rng.normal(0.0, 1.0, n) * spread, 18.25, 125.0) * 20.0) / 20.0
    )

    # Total charges accumulate over the tenure (price changes -> multiplicative noise).
    billed_months = np.maximum(tenure_months, 1)
    total_charges = np.round(
        billed_months * monthly_charges * rng.normal(1.0, 0.06, n) + rng.uniform(0.0, 25.0, n),
        2,
    )

    # Monthly data usage: heavier on fiber, light without home internet.
    usage_mu = np.select(
        [
            internet_service == "fiber optic",
            internet_service == "dsl",
            internet_service == "no internet",
        ],
        [3.4, 2.8, 1.2],
        2.5,
    )
    data_usage_gb = np.round(rng.lognormal(usage_mu, 0.6, n), 2)

    age = np.clip(np.round(rng.normal(46.0, 15.0, n)), 18, 90).astype(int)

    # Support calls: fiber customers and new customers call more.
    call_rate = 0.8 + 0.7 * (internet_service == "fiber optic") + 0.9 * (tenure_months < 6)
    support_calls = np.minimum(rng.poisson(call_rate), 12)

    # Churn: logistic model on the (complete) features plus latent noise.
    logit = (
        -1.0
        + np.select([contract == "one-year", contract == "two-year"], [-1.3, -2.4], 0.0)
        - 0.035 * tenure_months
        + 0.018 * (monthly_charges - 65.0)
        + 0.32 * support_calls
        + np.select(
            [payment_method == "electronic check", payment_method == "cryptocurrency"],
            [0.55, 0.9],
            0.0,
        )
        + np.select(
            [internet_service == "fiber optic", internet_service == "satellite"], [0.35, 0.7], 0.0
        )
        - 0.012 * (age - 46.0)
        - 0.15 * np.log1p(data_usage_gb)
        + 0.4 * (region == "islands")
        + rng.normal(0.0, 0.6, n)
    )
    churned = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)

    # Missing values (left empty in the CSV).
    return {
        "tenure_months": tenure_months,
        "monthly_charges": monthly_charges,
        "total_charges": _missing(rng, total_charges, 0.05),
        "support_calls": support_calls,
        "data_usage_gb": _missing(rng, data_usage_gb, 0.04),
        "age": _missing(rng, age, 0.06),
        "contract": contract,
        "payment_method": payment_method,
        "internet_service": internet_service,
        "region": region,
        TARGET: churned,
    }


def _format(column: str, value: object) -> str:
    if column in CATEGORICAL:
        return str(value)
    value = float(value)  # type: ignore[arg-type]
    if np.isnan(value):
        return ""
    if column in INTEGER_COLUMNS or column == TARGET:
        return str(int(value))
    return f"{value:.2f}"


def write_csv(data: dict[str, np.ndarray], path: Path = OUTPUT) -> None:
    n = len(data[TARGET])
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for i in range(n):
            writer.writerow([_format(c, data[c][i]) for c in COLUMNS])


def main() -> None:
    data = generate()
    write_csv(data)
    rate = float(np.mean(data[TARGET]))
    print(f"wrote {OUTPUT} ({len(data[TARGET])} rows, churn rate {rate:.3f})")


if __name__ == "__main__":
    main()
