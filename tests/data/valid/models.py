"""Tiny model builders the valid and invalid test specs refer to; never called by the tests."""


def logistic():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=200)


def ridge():
    from sklearn.linear_model import Ridge

    return Ridge()


def tiny_mlp():
    import torch

    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
