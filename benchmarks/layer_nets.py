"""Deep nets for the per-layer benchmark (benchmarks/layers.py): seeded, nothing downloaded.

- mlp50: 50 Linear(128, 128) layers (Kaiming weights) with a ReLU module after each but the
  last: 99 leaf modules, for 128 features.
- resnet_like: a conv stem and 16 basic residual blocks of 16 channels, then pooling and a
  linear head: 101 leaf modules, for (3, 16, 16) images.
"""

import torch
from torch import nn


def mlp50() -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for i in range(50):
        linear = nn.Linear(128, 128)
        nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")  # the signal survives 50
        layers.append(linear)
        if i < 49:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


class BasicBlock(nn.Module):
    """conv-bn-relu-conv-bn, plus the input, then relu: six leaf modules."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu2 = nn.ReLU()

    def forward(self, x):
        y = self.relu1(self.bn1(self.conv1(x)))
        return self.relu2(self.bn2(self.conv2(y)) + x)


class ResNetLike(nn.Module):
    def __init__(self, channels: int = 16, blocks: int = 16, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU()
        )
        self.blocks = nn.Sequential(*(BasicBlock(channels) for _ in range(blocks)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, classes)

    def forward(self, image):
        return self.fc(self.pool(self.blocks(self.stem(image))).flatten(1))


def resnet_like() -> nn.Module:
    torch.manual_seed(0)
    model = ResNetLike()
    with torch.no_grad():  # BatchNorm statistics away from (0, 1): folding them is a change
        for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    return model.eval()


def leaves(model: nn.Module) -> int:
    return sum(1 for m in model.modules() if not list(m.children()))
