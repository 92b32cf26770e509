"""fnn layers against PyTorch numerics: outputs and gradients from committed fixtures.

The fixtures in tests/fixtures/torch/ were written by scripts/make_torch_fixtures.py (PyTorch
CPU, float32); torch is not needed here. Each case holds torch's weights, input, output, a
cotangent and the gradients of sum(out * cot); fnn must agree to ~1e-5 after
:func:`fnn.interop.from_torch` and moving channels last.
"""
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.interop import from_torch

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "torch"
TOL = dict(rtol=1e-5, atol=1e-5)


def load(kind):
    data = np.load(FIXTURES / f"{kind}.npz")
    cases = json.loads(str(data["cases"]))
    return [(args, {k.split("_", 1)[1]: data[k] for k in data.files if k.startswith(f"c{i}_")})
            for i, args in enumerate(cases)]


def cases(kind):
    return [pytest.param(args, arrays, id=f"{kind}-{i}")
            for i, (args, arrays) in enumerate(load(kind))]


def last(a):
    """NC... (torch) -> N...C (fnn)."""
    return np.moveaxis(a, 1, -1)


def first(a):
    return np.moveaxis(a, -1, 1)


def params_of(torch_kind, arrays):
    names = {"weight", "bias", "running_mean", "running_var"} & set(arrays)
    return from_torch(torch_kind, {k: arrays[k] for k in names})


def grads_of(torch_kind, arrays):
    """Torch's parameter gradients mapped to fnn's layout by the same conversion (BatchNorm's
    weight/bias map as LayerNorm's: its running statistics have no gradient)."""
    kind = "LayerNorm" if torch_kind.startswith("BatchNorm") else torch_kind
    return from_torch(kind, {k[5:]: arrays[k] for k in ("grad_weight", "grad_bias")
                             if k in arrays})[0]


def check_layer(layer, torch_kind, arrays, *, channels_first=True, train=False):
    """Forward and VJP (with torch's cotangent) of ``layer`` against torch; returns new state."""
    to_fnn, to_torch = (last, first) if channels_first else (np.asarray, np.asarray)
    params, state = params_of(torch_kind, arrays) if "weight" in arrays else ({}, {})
    x = jnp.asarray(to_fnn(arrays["x"]))

    @jax.jit                                    # one compile per case instead of one per op
    def forward_backward(params, x, cot):
        y, vjp, new_state = jax.vjp(lambda p, x: layer.apply(p, state, x, train=train), params,
                                    x, has_aux=True)
        return y, vjp(cot), new_state

    y, (grad_params, grad_x), new_state = forward_backward(params, x,
                                                           jnp.asarray(to_fnn(arrays["cot"])))
    np.testing.assert_allclose(to_torch(y), arrays["out"], **TOL)
    np.testing.assert_allclose(to_torch(grad_x), arrays["grad_x"], **TOL)
    expected = grads_of(torch_kind, arrays) if "weight" in arrays else {}
    assert set(grad_params) == set(expected)
    for name in expected:
        np.testing.assert_allclose(grad_params[name], expected[name], **TOL, err_msg=name)
    return new_state


def padding(p):
    return p.upper() if isinstance(p, str) else p


@pytest.mark.parametrize("args, arrays", cases("linear"))
def test_linear_matches_torch(args, arrays):
    layer = fnn.Dense(args["out_features"], use_bias=args["bias"])
    check_layer(layer, "Linear", arrays, channels_first=False)


@pytest.mark.parametrize("args, arrays", cases("conv1d") + cases("conv2d"))
def test_conv_matches_torch(args, arrays):
    layer = fnn.Conv(args["out_channels"], args["kernel_size"], strides=args["stride"],
                     padding=padding(args["padding"]), dilation=args["dilation"],
                     groups=args["groups"])
    check_layer(layer, f"Conv{arrays['x'].ndim - 2}d", arrays)


@pytest.mark.parametrize("args, arrays", cases("conv_transpose2d"))
def test_conv_transpose_matches_torch(args, arrays):
    layer = fnn.ConvTranspose2D(args["out_channels"], args["kernel_size"], strides=args["stride"],
                                padding=args["padding"], output_padding=args["output_padding"],
                                dilation=args["dilation"], groups=args["groups"])
    check_layer(layer, "ConvTranspose2d", arrays)
    assert layer.output_shape(last(arrays["x"]).shape[1:]) == last(arrays["out"]).shape[1:]


@pytest.mark.parametrize("args, arrays", cases("batchnorm2d"))
def test_batchnorm_matches_torch_in_train_and_eval(args, arrays):
    layer = fnn.BatchNorm(momentum=1 - args["momentum"], eps=args["eps"])
    new_state = check_layer(layer, "BatchNorm2d", arrays, train=args["train"])
    if args["train"]:      # the running statistics moved as torch's did (unbiased var)
        np.testing.assert_allclose(new_state["mean"], arrays["new_running_mean"], **TOL)
        np.testing.assert_allclose(new_state["var"], arrays["new_running_var"], **TOL)
    else:
        np.testing.assert_array_equal(new_state["mean"], arrays["running_mean"])


@pytest.mark.parametrize("args, arrays", cases("layernorm"))
def test_layernorm_matches_torch(args, arrays):
    check_layer(fnn.LayerNorm(eps=args["eps"]), "LayerNorm", arrays, channels_first=False)


def pool_layer(kind, args):
    window, strides = args["kernel_size"], args.get("stride")
    if kind == "lppool2d":
        return fnn.LPPool(args["norm_type"], window, strides)
    pad = args.get("padding", 0)
    if kind == "maxpool2d":
        return fnn.MaxPool(window, strides, pad)
    return fnn.AvgPool(window, strides, pad, count_include_pad=args.get("count_include_pad", True))


@pytest.mark.parametrize("args, arrays", cases("maxpool2d") + cases("avgpool2d")
                         + cases("lppool2d"))
def test_pools_match_torch(args, arrays, request):
    kind = request.node.callspec.id.split("-")[0]
    check_layer(pool_layer(kind, args), None, arrays)


def test_from_torch_layouts():
    w = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    params, state = from_torch("Conv2d", {"weight": w, "bias": np.zeros(2, np.float32)})
    assert params["w"].shape == (4, 5, 3, 2) and state == {}
    assert params["w"][1, 2, 0, 1] == w[1, 0, 1, 2]                  # w[kh, kw, in, out]
    params, _ = from_torch("ConvTranspose2d", {"weight": w})          # (in, out/g, kh, kw)
    assert params["w"].shape == (4, 5, 3, 2) and "b" not in params
    params, _ = from_torch("Linear", {"weight": w[0, 0]})
    np.testing.assert_array_equal(params["w"], w[0, 0].T)
    params, state = from_torch("BatchNorm2d", {
        "weight": np.ones(3), "bias": np.zeros(3), "running_mean": np.full(3, 2.0),
        "running_var": np.full(3, 4.0), "num_batches_tracked": np.array(7)})
    assert set(params) == {"scale", "b"} and float(state["var"][0]) == 4.0


def test_from_torch_errors_name_what_was_expected():
    with pytest.raises(ValueError, match=r"unknown kind 'conv2d'; did you mean 'Conv2d'\?"):
        from_torch("conv2d", {})
    with pytest.raises(ValueError, match=r"'BatchNorm2d'.*expected keys \['bias', "
                                         r"'running_mean', 'running_var', 'weight'\].*"
                                         r"got \['bias', 'weight'\]"):
        from_torch("BatchNorm2d", {"weight": np.ones(3), "bias": np.zeros(3)})
    with pytest.raises(ValueError, match=r"expected keys \['weight'\].*got \['bias', 'wieght'\]"):
        from_torch("Linear", {"wieght": np.ones((2, 2)), "bias": np.ones(2)})
    with pytest.raises(ValueError, match=r"'Conv2d'.*'weight' with 4 dims, got shape \(3, 3\)"):
        from_torch("Conv2d", {"weight": np.ones((3, 3))})


def test_fixtures_stay_small():
    assert sum(p.stat().st_size for p in FIXTURES.glob("*.npz")) < 1_500_000


def test_from_torch_dispatches_recurrent_kinds():
    import jax
    from fnn.interop import rnn_from_torch
    d = np.load(pathlib.Path(__file__).parent / "fixtures" / "torch_rnn" / "lstm.npz")
    tensors = {k[len("c0_"):]: d[k] for k in ("c0_weight_ih_l0", "c0_weight_hh_l0",
                                               "c0_bias_ih_l0", "c0_bias_hh_l0")}
    via_interop, via_recurrent = from_torch("LSTM", tensors), rnn_from_torch("LSTM", tensors)
    jax.tree.map(np.testing.assert_array_equal, via_interop, via_recurrent)
    assert fnn.rnn_from_torch is rnn_from_torch
    with pytest.raises(ValueError, match=r"unknown kind 'LSMT'; did you mean 'LSTM'\?"):
        from_torch("LSMT", tensors)


def test_moved_names_say_where_they_went():
    """#23 moved rnn_from_torch to fnn.interop and EchoStateNetwork to fnn.models: the old
    import paths fail with a message naming the new place."""
    with pytest.raises(ImportError, match=r"fnn.layers.recurrent.rnn_from_torch moved to "
                                          r"fnn.interop.rnn_from_torch"):
        from fnn.layers.recurrent import rnn_from_torch  # noqa: F401
    with pytest.raises(ImportError, match=r"fnn.layers.EchoStateNetwork moved to "
                                          r"fnn.models.EchoStateNetwork"):
        from fnn.layers import EchoStateNetwork  # noqa: F401
    assert not hasattr(fnn.layers, "no_such_name")
    assert fnn.EchoStateNetwork is fnn.models.EchoStateNetwork
