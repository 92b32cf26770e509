"""PyTorch (CPU, eager, default thread count), in its documented idiom: ``nn.Module`` models,
``torch.optim`` with default settings, and the usual ``opt.zero_grad(); loss.backward();
opt.step()`` loop over ``torch.randperm``-shuffled epochs."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.workloads import Runner


def _step(model, opt, loss_fn, x, y):
    opt.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    return loss


def _epochs(model, x, y, config) -> Runner:
    """One shuffled epoch of Adam minibatch steps per call (last partial batch dropped)."""
    opt = torch.optim.Adam(model.parameters(), lr=config["learning_rate"])
    batch = config["batch_size"]
    steps = len(x) // batch

    def run():
        perm = torch.randperm(len(x))
        xs, ys = x[perm], y[perm]
        for i in range(steps):
            loss = _step(model, opt, F.cross_entropy, xs[i * batch:(i + 1) * batch],
                         ys[i * batch:(i + 1) * batch])
        return loss.item()

    return Runner(run, steps * batch)


def _tensors(data, *shape):
    """The inputs (float32, reshaped) and integer labels (int64, as F.cross_entropy wants)."""
    return torch.from_numpy(data["x"]).reshape(*shape), torch.from_numpy(data["y"]).long()


def quadrant(data, config) -> Runner:
    """The 2-50-4 ReLU net from the given weights; full-batch SGD, L2 on the weights only (an
    explicit loss term: SGD's weight_decay would decay the biases too)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, config["hidden"]), nn.ReLU(), nn.Linear(config["hidden"], 4))
    with torch.no_grad():  # nn.Linear stores its weight as (out, in)
        model[0].weight.copy_(torch.from_numpy(data["w1"]).T)
        model[0].bias.copy_(torch.from_numpy(data["b1"]))
        model[2].weight.copy_(torch.from_numpy(data["w2"]).T)
        model[2].bias.copy_(torch.from_numpy(data["b2"]))
    opt = torch.optim.SGD(model.parameters(), lr=config["learning_rate"])
    l2 = config["l2"]

    def loss_fn(logits, y):
        weights = model[0].weight.pow(2).sum() + model[2].weight.pow(2).sum()
        return F.cross_entropy(logits, y) + 0.5 * l2 * weights

    x, y = _tensors(data, -1, 2)
    steps = config["steps"] // 10  # a Python loop of eager steps: a tenth keeps a call short

    def run():
        for _ in range(steps):
            loss = _step(model, opt, loss_fn, x, y)
        return loss.item()

    return Runner(run, steps)


def mlp(data, config) -> Runner:
    torch.manual_seed(0)
    sizes = config["sizes"]
    layers = [m for a, b in zip(sizes[:-2], sizes[1:-1]) for m in (nn.Linear(a, b), nn.ReLU())]
    model = nn.Sequential(*layers, nn.Linear(sizes[-2], sizes[-1]))
    return _epochs(model, *_tensors(data, -1, sizes[0]), config)


def cnn(data, config) -> Runner:
    torch.manual_seed(0)
    c1, c2 = config["channels"]
    model = nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c2 * 7 * 7, 10))
    x, y = _tensors(data, *data["x"].shape)
    return _epochs(model, x.permute(0, 3, 1, 2).contiguous(), y, config)  # NHWC -> NCHW, once


class _LSTMRegressor(nn.Module):
    def __init__(self, features, hidden):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def lstm(data, config) -> Runner:
    """``config['steps']`` train steps on the one (64, 100, 32) batch per call."""
    torch.manual_seed(1)
    model = _LSTMRegressor(config["features"], config["hidden"])
    opt = torch.optim.Adam(model.parameters(), lr=config["learning_rate"])
    x, y = torch.from_numpy(data["x"]), torch.from_numpy(data["y"])

    def run():
        for _ in range(config["steps"]):
            loss = _step(model, opt, F.mse_loss, x, y)
        return loss.item()

    return Runner(run, config["steps"] * config["batch"])


class _BiGRUClassifier(nn.Module):
    def __init__(self, length, hidden):
        super().__init__()
        self.gru = nn.GRU(1, hidden, bidirectional=True, batch_first=True)
        self.head = nn.Linear(length * 2 * hidden, 10)

    def forward(self, x):
        out, _ = self.gru(x)                    # (B, 40, 2 * hidden): both directions, every step
        return self.head(out.flatten(1))


def gru_mnist1d(data, config) -> Runner:
    torch.manual_seed(0)
    length = data["x"].shape[1]
    model = _BiGRUClassifier(length, config["hidden"])
    return _epochs(model, *_tensors(data, -1, length, 1), config)


def adam(data, config) -> Runner:
    """torch.optim.Adam (defaults) on 50 tensors of 200k float32 values, gradients set once."""
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(config["size"], generator=gen, requires_grad=True)
              for _ in range(config["leaves"])]
    for p in params:
        p.grad = 1e-3 * p.detach()
    opt = torch.optim.Adam(params, lr=config["learning_rate"])

    def run():
        for _ in range(config["steps"]):
            opt.step()

    return Runner(run, config["steps"])


def gemm(data, config) -> Runner:
    n = config["size"]
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=gen) for _ in range(2))
    return Runner(lambda: torch.matmul(a, b), 2 * n ** 3 / 1e9)
