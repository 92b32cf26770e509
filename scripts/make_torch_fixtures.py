"""Write the PyTorch reference fixtures that tests/test_interop.py checks fnn against.

Run by hand, with PyTorch (CPU) in a separate environment (torch is not a dependency of fnn)::

    python3 -m venv /tmp/venvtorch && /tmp/venvtorch/bin/pip install torch==2.13.0 numpy
    /tmp/venvtorch/bin/python scripts/make_torch_fixtures.py

For each torch module kind it writes ``tests/fixtures/torch/<kind>.npz`` holding, per case i:
``c{i}_x`` (input, torch layout), ``c{i}_<param>`` (the module's state_dict before the call),
``c{i}_out`` (output), ``c{i}_cot`` (a random cotangent), ``c{i}_grad_x`` and
``c{i}_grad_<param>`` (gradients of sum(out * cot)), and for BatchNorm in training
``c{i}_new_running_mean``/``c{i}_new_running_var``. ``cases`` is a JSON list of the module
arguments of each case. Everything is float32 and small (the whole folder is ~0.25 MB).
"""
from __future__ import annotations

import json
import pathlib

import numpy as np
import torch

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "torch"


def _run(module, x, *, train=False):
    """Forward + backward of sum(out * cot) through ``module``; returns a dict of arrays."""
    arrays = {"x": x.numpy().copy()}
    arrays.update({k: v.detach().numpy().copy() for k, v in module.state_dict().items()
                   if k != "num_batches_tracked"})
    module.train(train)
    x = x.clone().requires_grad_(True)
    out = module(x)
    cot = torch.randn(out.shape)
    (out * cot).sum().backward()
    arrays.update(out=out.detach().numpy(), cot=cot.numpy(), grad_x=x.grad.numpy())
    for k, p in module.named_parameters():
        arrays[f"grad_{k}"] = p.grad.numpy()
    if train and hasattr(module, "running_mean"):
        arrays["new_running_mean"] = module.running_mean.numpy().copy()
        arrays["new_running_var"] = module.running_var.numpy().copy()
    return arrays


def save_cases(kind, cases, out=None):
    """cases: [(args dict, arrays dict)] -> ``out/<kind>.npz`` (default: OUT): the case
    arguments as JSON under 'cases', and every array of case i, as float32, under
    'c<i>_<name>'."""
    out = OUT if out is None else out
    payload = {"cases": np.array(json.dumps([args for args, _ in cases])),
               "torch_version": np.array(torch.__version__)}
    for i, (_, arrays) in enumerate(cases):
        payload.update({f"c{i}_{k}": np.asarray(v, np.float32) for k, v in arrays.items()})
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / f"{kind}.npz", **payload)


def _randomise(module):
    """Non-trivial parameters and running statistics, so every mapping is exercised."""
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if name == "running_var":
                t.copy_(torch.rand(t.shape) + 0.5)
            elif name != "num_batches_tracked":
                t.copy_(torch.randn(t.shape) * (0.5 if name.endswith("weight") else 1.0))


def linear():
    cases = []
    for in_f, out_f, bias, shape in [(5, 3, True, (4,)), (6, 2, False, (3,)), (4, 5, True, (2, 3))]:
        m = torch.nn.Linear(in_f, out_f, bias=bias)
        args = dict(in_features=in_f, out_features=out_f, bias=bias)
        cases.append((args, _run(m, torch.randn(*shape, in_f))))
    return cases


def conv(n):
    cls = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d}[n]
    spatial = {1: (11,), 2: (7, 6)}[n]
    # (in, out, kernel, stride, padding, dilation, groups)
    grid = {
        1: [(3, 6, 3, 1, 0, 1, 1), (3, 6, 3, 2, 1, 1, 3), (4, 4, 4, 3, 2, 1, 2),
            (2, 4, 3, 1, "same", 2, 1), (4, 6, 2, 1, "same", 1, 2), (3, 3, 3, 2, 0, 3, 3),
            (2, 2, 5, 1, "valid", 1, 1), (4, 8, 3, 2, 2, 2, 4)],
        2: [(4, 6, 3, 1, 0, 1, 1), (4, 6, 3, 1, 1, 1, 2), (4, 4, 3, 2, 1, 1, 4),
            (4, 6, (3, 2), 2, (1, 0), 1, 1), (2, 4, 3, 1, "same", 2, 1),
            (4, 4, (2, 3), 1, "same", (2, 1), 2), (4, 8, 3, (2, 1), 2, 2, 4),
            (3, 6, 2, 3, 0, 1, 3), (4, 2, 3, 1, "valid", 1, 2), (2, 3, 1, 2, 0, 1, 1),
            (4, 4, (3, 3), 2, (0, 2), (1, 2), 1), (6, 6, 3, 1, 1, 1, 6)],
    }[n]
    cases = []
    for cin, cout, k, s, p, d, g in grid:
        m = cls(cin, cout, k, stride=s, padding=p, dilation=d, groups=g)
        _randomise(m)
        args = dict(in_channels=cin, out_channels=cout, kernel_size=k, stride=s, padding=p,
                    dilation=d, groups=g)
        cases.append((args, _run(m, torch.randn(2, cin, *spatial))))
    return cases


def conv_transpose2d():
    # (in, out, kernel, stride, padding, output_padding, dilation, groups)
    grid = [(3, 4, 3, 1, 0, 0, 1, 1), (3, 4, 3, 2, 1, 1, 1, 1), (4, 2, 3, 2, 0, 0, 1, 2),
            (2, 4, (3, 2), (2, 3), (1, 0), (0, 2), 1, 1), (4, 4, 2, 2, 0, 1, 1, 4),
            (2, 3, 3, 1, 1, 0, 2, 1), (4, 6, 3, 3, 2, 2, (2, 1), 2), (2, 2, 4, 2, 1, 0, 1, 1),
            (3, 3, 1, 2, 0, 1, 1, 3)]
    cases = []
    for cin, cout, k, s, p, op, d, g in grid:
        m = torch.nn.ConvTranspose2d(cin, cout, k, stride=s, padding=p, output_padding=op,
                                     dilation=d, groups=g)
        _randomise(m)
        args = dict(in_channels=cin, out_channels=cout, kernel_size=k, stride=s, padding=p,
                    output_padding=op, dilation=d, groups=g)
        cases.append((args, _run(m, torch.randn(2, cin, 4, 5))))
    return cases


def batchnorm2d():
    cases = []
    for train, momentum, shape in [(True, 0.1, (4, 3, 5, 4)), (True, 0.3, (2, 2, 3, 3)),
                                   (False, 0.1, (4, 3, 5, 4))]:
        m = torch.nn.BatchNorm2d(shape[1], momentum=momentum, eps=1e-5)
        _randomise(m)
        args = dict(num_features=shape[1], momentum=momentum, eps=1e-5, train=train)
        cases.append((args, _run(m, torch.randn(*shape) * 2 + 1, train=train)))
    return cases


def layernorm():
    cases = []
    for shape, eps in [((4, 6), 1e-5), ((2, 3, 5), 1e-3)]:
        m = torch.nn.LayerNorm(shape[-1], eps=eps)
        _randomise(m)
        cases.append((dict(normalized_shape=shape[-1], eps=eps), _run(m, torch.randn(*shape))))
    return cases


def pool(kind):
    x = lambda: torch.randn(2, 3, 7, 6)
    positive = lambda: torch.rand(2, 3, 7, 6) + 0.1
    if kind == "maxpool2d":
        grid = [dict(kernel_size=2), dict(kernel_size=3, stride=2), dict(kernel_size=3, stride=1,
                padding=1), dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0))]
        make, data = torch.nn.MaxPool2d, [x] * 4
    elif kind == "avgpool2d":
        grid = [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                dict(kernel_size=3, stride=1, padding=1, count_include_pad=False),
                dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1))]
        make, data = torch.nn.AvgPool2d, [x] * 4
    else:
        grid = [dict(norm_type=2, kernel_size=2), dict(norm_type=2, kernel_size=3, stride=2),
                dict(norm_type=1, kernel_size=2, stride=1), dict(norm_type=3, kernel_size=(3, 2))]
        make, data = torch.nn.LPPool2d, [x, x, positive, positive]
    return [(args, _run(make(**args), d())) for args, d in zip(grid, data)]


def main():
    torch.manual_seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    save_cases("linear", linear())
    save_cases("conv1d", conv(1))
    save_cases("conv2d", conv(2))
    save_cases("conv_transpose2d", conv_transpose2d())
    save_cases("batchnorm2d", batchnorm2d())
    save_cases("layernorm", layernorm())
    for kind in ("maxpool2d", "avgpool2d", "lppool2d"):
        save_cases(kind, pool(kind))
    total = sum(p.stat().st_size for p in OUT.glob("*.npz"))
    print(f"wrote {len(list(OUT.glob('*.npz')))} files, {total / 1e3:.0f} kB, to {OUT}")


if __name__ == "__main__":
    main()
