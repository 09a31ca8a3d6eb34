"""A PyTorch churn classifier on the numeric churn columns, for ``specs/churn_torch.yaml``.

``churn_mlp`` is the torch backend's factory (``module:``): it trains a small MLP that
returns one logit (``BCEWithLogitsLoss``), on the rows the spec's split trains on (test_size
0.2, seed 7, stratified, as parityspec splits), and returns it in eval mode. Imputation and
scaling live inside the module, as buffers, so the ONNX export carries them: the module
takes the raw columns, gaps (NaN) included. Training is seeded and full-batch on the CPU:
the same weights on every run, in about a second.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from torch import nn

DATA = Path(__file__).with_name("churn.csv")
TARGET = "churned"
# The numeric columns of train.py's NUMERIC, in the spec's data.features order.
NUMERIC = [
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "support_calls",
    "data_usage_gb",
    "age",
]


class TabularNet(nn.Module):
    """Median-impute, standardise, then an MLP; the statistics are buffers from training."""

    def __init__(self, fill: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, outputs: int):
        super().__init__()
        self.register_buffer("fill", fill)
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        width = len(fill)
        self.layers = nn.Sequential(
            nn.Linear(width, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, outputs)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = torch.where(torch.isnan(features), self.fill, features)
        return self.layers((features - self.mean) / self.std)


def fit_tabular_net(
    x: np.ndarray, y: np.ndarray, outputs: int, loss: nn.Module, epochs: int = 200
) -> TabularNet:
    """Full-batch Adam on float32 rows (NaN allowed in x); seeded, so deterministic."""
    torch.manual_seed(0)
    features = torch.from_numpy(np.asarray(x, dtype=np.float32))
    fill = torch.from_numpy(np.nanmedian(x, axis=0).astype(np.float32))
    filled = torch.where(torch.isnan(features), fill, features)
    mean, std = filled.mean(dim=0), filled.std(dim=0).clamp_min(1e-6)
    net = TabularNet(fill, mean, std, outputs)
    target = torch.from_numpy(y)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(epochs):
        optimizer.zero_grad()
        loss(net(features), target).backward()
        optimizer.step()
    return net.eval()


def churn_mlp() -> nn.Module:
    """6-32-16-1, one logit for churn: the spec declares `returns: logits` (sigmoid)."""
    frame = pd.read_csv(DATA)
    y = frame[TARGET].to_numpy()
    train, _ = train_test_split(np.arange(len(frame)), test_size=0.2, random_state=7, stratify=y)
    x = frame[NUMERIC].to_numpy(dtype=np.float32)[train]
    target = y[train].astype(np.float32).reshape(-1, 1)
    return fit_tabular_net(x, target, outputs=1, loss=nn.BCEWithLogitsLoss())


def churn_mlp_architecture() -> nn.Module:
    """The same net untrained, for a state dict saved from `churn_mlp` (`state_dict:`): its
    buffers (medians, means, deviations) come with the weights."""
    width = len(NUMERIC)
    return TabularNet(torch.zeros(width), torch.zeros(width), torch.ones(width), outputs=1)
