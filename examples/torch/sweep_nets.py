"""Three small networks on one input, a (3, 32, 32) image, for `specs/torch_sweep.yaml`: the
MLP flattens it, the CNN convolves it, the transformer block cuts it into 8x8 patches. Each
is built from a fixed seed (nothing is downloaded; every call builds the same module) and
returns 10 logits; none is degenerate: BatchNorm statistics and LayerNorm affine are moved
off their starting values, and every logit varies with the input at a scale of order 1."""

import torch
from torch import nn

CLASSES = 10


def mlp() -> nn.Module:
    """3072-128-64-10 with ReLUs: the image flattened."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(3 * 32 * 32, 128),
        nn.ReLU(),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Linear(64, CLASSES),
    ).eval()


class SmallCNN(nn.Module):
    """The CNN of `nets.py` (`specs/cnn.yaml`), written out here: a step's cache key hashes
    the file a spec names, not the files it imports. Conv, BatchNorm, in-place ReLU, a ReLU
    module used twice, pooling, linear; its global pooling takes any image size."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.pool = nn.MaxPool2d(2)
        self.head_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, CLASSES)

    def forward(self, image):
        x = self.relu(self.bn1(self.conv1(image)))
        x = self.pool(x)
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.head_pool(x).flatten(1)
        return self.fc(x)


def cnn() -> nn.Module:
    torch.manual_seed(0)
    model = SmallCNN().eval()
    with torch.no_grad():  # statistics away from (0, 1): folding them into the conv changes it
        for bn in (model.bn1, model.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    return model


class PatchTransformer(nn.Module):
    """8x8 patches embedded by a strided conv (16 tokens of 32), a learned position
    embedding, one transformer encoder block, mean-pooled to 10 logits."""

    def __init__(self):
        super().__init__()
        self.patchify = nn.Conv2d(3, 32, kernel_size=8, stride=8)
        self.position = nn.Parameter(torch.randn(1, 16, 32) * 0.5)
        self.encoder = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.head = nn.Linear(32, CLASSES)

    def forward(self, image):
        tokens = self.patchify(image).flatten(2).transpose(1, 2) + self.position
        return self.head(self.encoder(tokens).mean(dim=1))


def transformer() -> nn.Module:
    torch.manual_seed(0)
    model = PatchTransformer().eval()
    with torch.no_grad():  # LayerNorm affine off its (1, 0) start
        for norm in (model.encoder.norm1, model.encoder.norm2):
            norm.weight.uniform_(0.8, 1.2)
            norm.bias.uniform_(-0.1, 0.1)
    return model
