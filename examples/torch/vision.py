"""torchvision models with random weights (nothing downloaded), for the optional tests.

torchvision's own initialisation is degenerate for a parity sweep: vit_b_16's head is zeros
(logits exactly 0) and mobilenet_v3_small's logits stay under about 1e-8, so no export could
ever fail on them. Every model here is re-initialised from a fixed seed so that activations
keep their scale through the depth: He-normal weights on each Conv and Linear (gain for
ReLU), small random biases, BatchNorm affine and running statistics away from (1, 0), and
LayerNorm affine near (1, 0) but not exactly. No weight or bias is left at zero."""

import math

import torch
from torch import nn

SEED = 0


def non_degenerate(model: nn.Module, seed: int = SEED) -> nn.Module:
    """Re-initialise `model` in place from `seed` (module docstring); returns it in eval mode."""
    generator = torch.Generator().manual_seed(seed)

    def uniform(tensor: torch.Tensor, low: float, high: float) -> None:
        tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                fan_in = module.weight[0].numel()
                std = math.sqrt(2.0 / fan_in)
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
                if module.bias is not None:
                    uniform(module.bias, -0.1, 0.1)
            elif isinstance(module, nn.BatchNorm2d):
                uniform(module.weight, 0.5, 1.5)
                uniform(module.bias, -0.1, 0.1)
                uniform(module.running_mean, -0.5, 0.5)
                uniform(module.running_var, 0.5, 2.0)
            elif isinstance(module, nn.LayerNorm) and module.elementwise_affine:
                uniform(module.weight, 0.8, 1.2)
                uniform(module.bias, -0.1, 0.1)
            elif isinstance(module, nn.MultiheadAttention) and module.in_proj_weight is not None:
                fan_in = module.in_proj_weight.shape[1]
                scale = math.sqrt(1.0 / fan_in)
                shape = module.in_proj_weight.shape
                module.in_proj_weight.copy_(torch.randn(shape, generator=generator) * scale)
                if module.in_proj_bias is not None:
                    uniform(module.in_proj_bias, -0.1, 0.1)
        for name, parameter in model.named_parameters():
            # vit's class token and position embedding: zeros or tiny in torchvision.
            if name.endswith(("class_token", "pos_embedding")):
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    return model.eval()


def resnet18():
    from torchvision.models import resnet18 as build

    torch.manual_seed(SEED)
    return non_degenerate(build(weights=None))


def mobilenet_v3_small():
    from torchvision.models import mobilenet_v3_small as build

    torch.manual_seed(SEED)
    return non_degenerate(build(weights=None))


def vit_b_16():
    """224x224 inputs (its patch embedding fixes the image size)."""
    from torchvision.models import vit_b_16 as build

    torch.manual_seed(SEED)
    return non_degenerate(build(weights=None))
