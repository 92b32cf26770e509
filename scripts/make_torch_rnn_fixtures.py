"""Write the PyTorch RNN/LSTM/GRU reference fixtures that tests/test_recurrent_torch.py checks
fnn's recurrent layers (and ``fnn.interop.rnn_from_torch``) against.

Run by hand, with PyTorch (CPU) in a separate environment (torch is not a dependency of fnn)::

    python3 -m venv /tmp/venvtorch && /tmp/venvtorch/bin/pip install torch==2.13.0 numpy
    /tmp/venvtorch/bin/python scripts/make_torch_rnn_fixtures.py

For each kind (rnn, lstm, gru, rnncell, lstmcell, grucell) it writes
``tests/fixtures/torch_rnn/<kind>.npz`` holding, per case i: ``c{i}_x`` (input, batch first;
(batch, features) for the cells), ``c{i}_<param>`` (the module's state_dict), optionally
``c{i}_h0``/``c{i}_c0`` (initial state, torch layout (layers*directions, batch, hidden)),
``c{i}_out`` (output; for a cell its h, for an LSTMCell also ``c{i}_c``), ``c{i}_h_n``/``c{i}_c_n``,
``c{i}_cot`` (a random cotangent for out), and the gradients of sum(out * cot):
``c{i}_grad_x`` and ``c{i}_grad_<param>``. ``cases`` is a JSON list of each case's module
arguments. Everything is float32; the folder is ~130 kB.
"""
from __future__ import annotations

import pathlib

import numpy as np
import torch

from make_torch_fixtures import save_cases  # scripts/ is on sys.path when run

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "torch_rnn"
BATCH, TIME = 3, 6


def _run(module, x, h0=None, c0=None, cell=False):
    arrays = {"x": x.numpy().copy()}
    arrays.update({k: v.detach().numpy().copy() for k, v in module.state_dict().items()})
    x = x.clone().requires_grad_(True)
    state = None
    if h0 is not None:
        arrays["h0"] = h0.numpy().copy()
        state = h0 if c0 is None else (h0, c0)
        if c0 is not None:
            arrays["c0"] = c0.numpy().copy()
    if cell:
        res = module(x, state)
        out = res[0] if isinstance(res, tuple) else res
        if isinstance(res, tuple):
            arrays["c"] = res[1].detach().numpy()
    else:
        out, hn = module(x, state)
        if isinstance(hn, tuple):
            arrays["h_n"], arrays["c_n"] = hn[0].detach().numpy(), hn[1].detach().numpy()
        else:
            arrays["h_n"] = hn.detach().numpy()
    cot = torch.randn(out.shape)
    (out * cot).sum().backward()
    arrays.update(out=out.detach().numpy(), cot=cot.numpy(), grad_x=x.grad.numpy())
    for k, p in module.named_parameters():
        arrays[f"grad_{k}"] = p.grad.numpy()
    return arrays



# (input, hidden, layers, bidirectional, bias, with initial state)
GRID = [(3, 4, 1, False, True, True), (2, 5, 1, True, True, False),
        (4, 3, 2, True, True, True), (3, 4, 2, False, False, False)]


def sequence_cases(cls, variants):
    """Every GRID entry with the first variant of the module arguments, the first entry with
    the others (the RNN's relu)."""
    cases = []
    for j, extra in enumerate(variants):
        for f, h, layers, bi, bias, init in GRID if j == 0 else GRID[:1]:
            args = dict(input_size=f, hidden_size=h, num_layers=layers, bidirectional=bi,
                        bias=bias, batch_first=True, **extra)
            m = cls(**args)
            d = 2 if bi else 1
            h0 = torch.randn(layers * d, BATCH, h) * 0.5 if init else None
            c0 = torch.randn(layers * d, BATCH, h) * 0.5 if init and cls is torch.nn.LSTM else None
            cases.append(({**args, "initial_state": init}, _run(m, torch.randn(BATCH, TIME, f),
                                                                h0, c0)))
    return cases


def cell_cases(cls, variants):
    cases = []
    for j, extra in enumerate(variants):
        for f, h, init in [(3, 4, False), (5, 2, True)][: 2 if j == 0 else 1]:
            args = dict(input_size=f, hidden_size=h, **extra)
            m = cls(**args)
            h0 = torch.randn(BATCH, h) * 0.5 if init else None
            c0 = torch.randn(BATCH, h) * 0.5 if init and cls is torch.nn.LSTMCell else None
            cases.append(({**args, "initial_state": init},
                          _run(m, torch.randn(BATCH, f), h0, c0, cell=True)))
    return cases


def main():
    torch.manual_seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    relu_tanh = [{"nonlinearity": "tanh"}, {"nonlinearity": "relu"}]
    save_cases("rnn", sequence_cases(torch.nn.RNN, relu_tanh), OUT)
    save_cases("lstm", sequence_cases(torch.nn.LSTM, [{}]), OUT)
    save_cases("gru", sequence_cases(torch.nn.GRU, [{}]), OUT)
    save_cases("rnncell", cell_cases(torch.nn.RNNCell, relu_tanh), OUT)
    save_cases("lstmcell", cell_cases(torch.nn.LSTMCell, [{}]), OUT)
    save_cases("grucell", cell_cases(torch.nn.GRUCell, [{}]), OUT)
    total = sum(p.stat().st_size for p in OUT.glob("*.npz"))
    print(f"wrote {len(list(OUT.glob('*.npz')))} files, {total / 1e3:.0f} kB, to {OUT}")


if __name__ == "__main__":
    main()
