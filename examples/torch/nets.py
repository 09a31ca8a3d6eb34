"""Small PyTorch nets for the torch specs. Weights come from a fixed seed: nothing is
downloaded, and every call builds the same module."""

import torch
from torch import nn


class SmallCNN(nn.Module):
    """Conv, BatchNorm, in-place ReLU, a ReLU module used twice, pooling, linear."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.pool = nn.MaxPool2d(2)
        self.head_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, image):
        x = self.relu(self.bn1(self.conv1(image)))
        x = self.pool(x)
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.head_pool(x).flatten(1)
        return self.fc(x)


def _seeded(module: nn.Module) -> nn.Module:
    # BatchNorm statistics away from (0, 1), so folding them into the conv is a real change.
    for bn in (m for m in module.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    return module.eval()


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    with torch.no_grad():
        return _seeded(SmallCNN())


def small_cnn_faulty() -> nn.Module:
    """The same CNN with conv2's weights off by 5%: a fault at a known layer."""
    model = small_cnn()
    with torch.no_grad():
        model.conv2.weight.mul_(1.05)
    return model


class EncoderBlock(nn.Module):
    """A transformer encoder block on (batch, tokens, 32) inputs, mean-pooled to 4 logits."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.head = nn.Linear(32, 4)

    def forward(self, tokens):
        return self.head(self.encoder(tokens).mean(dim=1))


def encoder_block() -> nn.Module:
    torch.manual_seed(0)
    return EncoderBlock().eval()


def mlp() -> nn.Module:
    """30-256-256-2: dynamic INT8 quantization changes its MatMuls."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(30, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 2)
    ).eval()


class Transformer(nn.Module):
    """Two encoder layers on (batch, 8, 32) tokens, flattened to 4 logits: each layer's
    self-attention (nn.MultiheadAttention, whose projections are not called as modules) is
    compared as a whole."""

    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(8 * 32, 4)

    def forward(self, tokens):
        return self.head(self.encoder(tokens).flatten(1))


def transformer() -> nn.Module:
    torch.manual_seed(0)
    return Transformer().eval()
