"""Issue 18.7: the torchvision models of the sweeps are re-initialised from a seed so their
figures mean something (torchvision's own init leaves vit_b_16's head at zero and
mobilenet_v3_small's logits under 1e-8). The initialiser is tested here on nets built
without torchvision; the factories themselves only where torchvision is installed."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from tests.conftest import REPO


def _vision():
    spec = importlib.util.spec_from_file_location("vision", REPO / "examples/torch/vision.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Deep(nn.Module):
    """24 conv+BN+ReLU, an attention, a LayerNorm, and a zero-initialised head."""

    def __init__(self) -> None:
        super().__init__()
        layers = []
        for _ in range(24):
            layers += [nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()]
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), *layers)
        self.attention = nn.MultiheadAttention(8, 2, batch_first=True)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 4)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.body(x).flatten(2).transpose(1, 2)
        attended, _ = self.attention(tokens, tokens, tokens)
        return self.head(self.norm(attended).mean(dim=1))


def _logits(model: nn.Module) -> torch.Tensor:
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model(x)


def test_zero_head_and_decaying_depth_become_non_degenerate():
    torch.manual_seed(0)
    degenerate = Deep().eval()
    assert _logits(degenerate).abs().max() == 0  # what a zero head gives
    model = _vision().non_degenerate(Deep())
    assert not model.training
    for name, parameter in model.named_parameters():
        assert parameter.abs().max() > 0, name
    logits = _logits(model)
    assert torch.isfinite(logits).all() and 0.05 < logits.std() < 100
    assert len({round(v, 6) for v in logits.flatten().tolist()}) == logits.numel()


def test_initialisation_is_seeded():
    vision = _vision()
    one = _logits(vision.non_degenerate(Deep(), seed=3))
    torch.manual_seed(123)  # the global seed does not matter, the given one does
    two = _logits(vision.non_degenerate(Deep(), seed=3))
    other = _logits(vision.non_degenerate(Deep(), seed=4))
    assert torch.equal(one, two) and not torch.equal(one, other)


@pytest.mark.parametrize(
    ("factory", "size"), [("resnet18", 64), ("mobilenet_v3_small", 64), ("vit_b_16", 224)]
)
def test_torchvision_factories_give_non_degenerate_logits(factory, size):
    pytest.importorskip("torchvision")
    model = getattr(_vision(), factory)()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(x)
    assert torch.isfinite(logits).all() and logits.abs().max() > 1e-2
    with torch.no_grad():
        assert torch.equal(logits, getattr(_vision(), factory)()(x))
