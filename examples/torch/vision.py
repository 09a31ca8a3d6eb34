"""torchvision models with random weights (nothing downloaded), for the optional tests."""

import torch


def resnet18():
    from torchvision.models import resnet18 as build

    torch.manual_seed(0)
    return build(weights=None).eval()


def mobilenet_v3_small():
    from torchvision.models import mobilenet_v3_small as build

    torch.manual_seed(0)
    return build(weights=None).eval()
