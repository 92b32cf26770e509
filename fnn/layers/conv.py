"""Convolution (grouped, strided, dilated) and transposed convolution, channels last."""
from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
from jax import lax

from fnn import initializers
from fnn.core import Layer, ParamsError, batch_hint, require_params
from fnn.layers._args import int_tuple, padding_arg, window_output
from fnn.validation import flag, positive_int

__all__ = ["Conv", "Conv1D", "Conv2D", "Conv3D", "ConvTranspose", "ConvTranspose1D",
           "ConvTranspose2D", "ConvTranspose3D"]


def _dimension_numbers(n: int) -> lax.ConvDimensionNumbers:
    """Channels last: x (N, *spatial, C), kernel (*spatial, I, O), y (N, *spatial, C)."""
    io = (0, n + 1, *range(1, n + 1))
    return lax.ConvDimensionNumbers(io, (n + 1, n, *range(n)), io)


def _spatial_rank(name, kernel_size, input_shape):
    """The number of spatial dims n: len(kernel_size) for a tuple, else read from the input."""
    fixed = isinstance(kernel_size, (tuple, list))
    n = len(kernel_size) if fixed else len(input_shape) - 1
    if n < 1 or len(input_shape) != n + 1:
        raise ValueError(f"{name}: expected input_shape (*spatial, channels) with "
                         f"{n if fixed else 'at least 1'} spatial dim(s), got {input_shape}")
    return n


def _check_input(name, x, n, channels):
    if x.ndim != n + 2 or x.shape[-1] != channels:
        raise ValueError(f"{name}: expected input of shape (batch, <{n} spatial dims>, "
                         f"{channels}), got {tuple(x.shape)}{batch_hint(x, n + 2)}")


def _warn_if_channels_first(name, input_shape):
    """Warn when an image shape reads as channels-first, e.g. (1, 28, 28): a first axis of at
    most 4 (a channel count) and every later axis, channels included, at least 4 times larger.
    NHWC shapes such as (32, 32, 3), (28, 28, 1) or (7, 7, 64) never match."""
    first, rest = input_shape[0], input_shape[1:]
    if len(input_shape) >= 3 and first <= 4 and all(s >= 4 * first for s in rest):
        warnings.warn(f"{name}: input_shape {tuple(input_shape)} looks channels-first; fnn is "
                      f"channels-last (NHWC): did you mean {(*rest, first)}? As given, this is "
                      f"a {'x'.join(map(str, input_shape[:-1]))} image with {input_shape[-1]} "
                      f"channels", UserWarning, stacklevel=4)


def _check_kernel(name, w, expected):
    """The kernel's shape against the layer's configuration (None: any size on that axis)."""
    if w.ndim != len(expected) or any(e is not None and s != e for s, e in zip(w.shape, expected)):
        want = ", ".join("*" if e is None else str(e) for e in expected)
        raise ParamsError(f"{name}: params hold w {tuple(w.shape)}, but this layer expects a "
                          f"kernel ({want}); were they made by another network's init?")


def _validate(name, features, kernel_size, strides, dilation, padding, groups, use_bias):
    """Construction-time checks shared by Conv and ConvTranspose."""
    positive_int(name, "features", features)
    positive_int(name, "groups", groups)
    flag(name, "use_bias", use_bias)
    int_tuple(name, "kernel_size", kernel_size)
    int_tuple(name, "strides", strides)
    int_tuple(name, "dilation", dilation)
    padding_arg(name, padding)
    if features % groups:
        raise ValueError(f"{name}: features (={features}) must be divisible by groups "
                         f"(={groups})")


def _check_groups(name, c_in, groups):
    if c_in % groups:
        raise ValueError(f"{name}: in_channels (={c_in}) must be divisible by groups "
                         f"(={groups})")


def _dilated(kernel, dilation):
    """The extent of a dilated kernel: d*(k - 1) + 1 per spatial dim."""
    return tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))


def _kernel_and_bias(key, w_shape, features: int, w_init, b_init, dtype) -> dict:
    """{"w": w_init(w_shape)} plus, unless ``b_init`` is None, {"b": b_init((features,))}, the
    bias of the layer's ``features`` output channels."""
    kw, kb = jax.random.split(key)
    params = {"w": w_init(kw, w_shape, dtype)}
    if b_init is not None:
        params["b"] = b_init(kb, (features,), dtype)
    return params


def _add_bias(name, y, params, features):
    if "b" in params:
        if params["b"].shape != (features,):
            raise ParamsError(f"{name}: params hold b {tuple(params['b'].shape)}, but this "
                              f"layer has {features} output channels; were they made by another "
                              f"network's init?")
        y = y + jnp.expand_dims(params["b"], tuple(range(y.ndim - 1)))
    return y


def Conv(features: int, kernel_size, *, strides=1, padding="SAME", dilation=1, groups: int = 1,
         use_bias: bool = True, w_init=initializers.lecun_normal(), b_init=initializers.zeros,
         dtype=jnp.float32, name: str = "conv") -> Layer:
    """Convolution (cross-correlation, as in every DL library) over the spatial axes.

    For one spatial dim (the others alike), with C = in_channels and g = groups::

        y[b, i, o] = b[o] + sum_{t, c} x_pad[b, s*i + d*t, (o // (O/g)) * (C/g) + c] * w[t, c, o]

    where t runs over the kernel, c over the C/g input channels of output channel o's group,
    x_pad is x padded by (lo, hi), s = strides, d = dilation. Output size per spatial dim::

        out = floor((in + lo + hi - d*(k - 1) - 1) / s) + 1      ('SAME': out = ceil(in / s))

    Args:
      features: output channels O, divisible by ``groups``.
      kernel_size: an int or a tuple (k_1, ..., k_n). A tuple fixes the number of spatial
        dims n; with an int, n is read from the input at init (``Conv2D`` etc. fix n = 2).
      strides, dilation: int or n-tuple, each >= 1.
      padding: 'SAME', 'VALID', an int p (p each side), a tuple of n ints, or explicit
        ((lo, hi), ...) pairs; 'SAME' puts the odd pad on the high side, as XLA and PyTorch.
      groups: split channels into g groups convolved independently (AlexNet); in_channels
        and features must be divisible by g. Weights: k_1*...*k_n * (C/g) * O, g times fewer.
      use_bias, w_init, b_init, dtype: as for :func:`fnn.Dense` (default w ~ N(0, 1/fan_in),
        fan_in = k_1*...*k_n * C/g).

    Shapes: x (batch, *spatial, C) -> y (batch, *out_spatial, O), channels last (NHWC);
    params ``w`` (*kernel_size, C/g, O), ``b`` (O,).
    """
    _validate(name, features, kernel_size, strides, dilation, padding, groups, use_bias)
    w_init, b_init = initializers.get(w_init), initializers.get(b_init)

    def settings(n):
        k = int_tuple(name, "kernel_size", kernel_size, n)
        s = int_tuple(name, "strides", strides, n)
        d = int_tuple(name, "dilation", dilation, n)
        return k, s, d, padding_arg(name, padding, n)

    def init_fn(key, input_shape):
        n = _spatial_rank(name, kernel_size, input_shape)
        _warn_if_channels_first(name, input_shape)
        k, s, d, pad = settings(n)
        c_in = input_shape[-1]
        _check_groups(name, c_in, groups)
        out, _ = window_output(name, input_shape[:-1], _dilated(k, d), s, pad, "dilated kernel")
        params = _kernel_and_bias(key, (*k, c_in // groups, features), features, w_init,
                                  b_init if use_bias else None, dtype)
        return (*out, features), params, {}

    def apply_fn(params, state, x, key, train):
        require_params(name, params, ("w", "b") if use_bias else ("w",))
        w = params["w"]
        n = w.ndim - 2 if isinstance(kernel_size, int) else len(kernel_size)
        k, s, d, pad = settings(max(n, 1))
        _check_kernel(name, w, (*k, None, features))
        _check_input(name, x, n, w.shape[-2] * groups)
        _, pads = window_output(name, x.shape[1:-1], _dilated(k, d), s, pad, "dilated kernel")
        y = lax.conv_general_dilated(x, w, s, pads, rhs_dilation=d,
                                     dimension_numbers=_dimension_numbers(n),
                                     feature_group_count=groups)
        return _add_bias(name, y, params, features), state

    return Layer(name, init_fn, apply_fn)


def ConvTranspose(features: int, kernel_size, *, strides=1, padding="SAME", output_padding=0,
                  dilation=1, groups: int = 1, use_bias: bool = True,
                  w_init=initializers.lecun_normal(), b_init=initializers.zeros,
                  dtype=jnp.float32, name: str = "conv_transpose") -> Layer:
    """Transposed convolution: the gradient (VJP) of :func:`Conv` with respect to its input.

    Let ``conv`` be the convolution from ``features`` to in_channels channels with kernel
    ``w``, ``strides``, ``padding``, ``dilation`` and ``groups``, on inputs of spatial size N.
    Then, exactly (this is what the tests check)::

        y = vjp(z -> conv(z, w), at any z of shape (batch, *N, features))(x) + b

    Per spatial dim (no groups): y[b, j, f] = b[f] + sum over (i, t, c) with s*i + d*t - lo = j
    of x[b, i, c] * w[t, f, c]: each input pixel scatters a copy of the kernel, s apart.
    The output size N is the conv input size that maps to the given size, as PyTorch::

        N = (in - 1)*s - lo - hi + d*(k - 1) + output_padding + 1   (int p: lo = hi = p)
        N = in * s                                                 ('SAME')

    Args:
      features: output channels F (the matching conv's input channels), divisible by groups.
      kernel_size, strides, dilation, groups, use_bias, w_init, b_init, dtype: as :func:`Conv`.
      padding: the matching conv's padding ('SAME', 'VALID', int, tuple, (lo, hi) pairs);
        it is cropped from the full transposed output.
      output_padding: int or tuple in [0, strides): extra size on the high side, choosing
        among the ``s`` conv input sizes that give the same conv output size.

    Shapes: x (batch, *spatial, C) -> y (batch, *N, F); params ``w`` (*kernel_size, F/g, C),
    i.e. the matching conv's kernel in fnn's layout, used as is (not flipped); ``b`` (F,).
    PyTorch's ConvTranspose weight (C, F/g, *k) is that same kernel: it maps by a transpose
    only (see :func:`fnn.interop.from_torch`).
    """
    _validate(name, features, kernel_size, strides, dilation, padding, groups, use_bias)
    int_tuple(name, "output_padding", output_padding, minimum=0)
    w_init, b_init = initializers.get(w_init), initializers.get(b_init)

    def geometry(n, in_sizes):
        """Per spatial dim: the output size N (the matching conv's input size), that conv's
        pads (lo, hi), and op = N - (smallest conv input size giving ``in`` outputs)."""
        k = int_tuple(name, "kernel_size", kernel_size, n)
        s = int_tuple(name, "strides", strides, n)
        d = int_tuple(name, "dilation", dilation, n)
        op = int_tuple(name, "output_padding", output_padding, n, minimum=0)
        if any(o >= si for o, si in zip(op, s)):
            raise ValueError(f"{name}: output_padding {op} must be smaller than strides {s} "
                             f"(it picks one of the stride input sizes a strided convolution "
                             f"maps to the same output size)")
        window = _dilated(k, d)
        pad = padding_arg(name, padding, n)
        if pad == "SAME":
            if any(op):
                raise ValueError(f"{name}: output_padding must be 0 with padding='SAME' (the "
                                 f"output size is input * strides), got {op}")
            sizes = tuple(i * si for i, si in zip(in_sizes, s))
            _, pads = window_output(name, sizes, window, s, pad, "dilated kernel")
            op = tuple(big - ((i - 1) * si + w - lo - hi)
                       for big, i, si, w, (lo, hi) in zip(sizes, in_sizes, s, window, pads))
        else:
            pads = ((0, 0),) * n if pad == "VALID" else pad
            sizes = tuple((i - 1) * si + w - lo - hi + o
                          for i, si, w, (lo, hi), o in zip(in_sizes, s, window, pads, op))
        if any(size < 1 for size in sizes):
            raise ValueError(f"{name}: padding {pads} leaves an output of size {sizes} for "
                             f"input spatial size {tuple(in_sizes)}; it must be >= 1")
        return k, s, d, window, sizes, pads, op

    def init_fn(key, input_shape):
        n = _spatial_rank(name, kernel_size, input_shape)
        c_in = input_shape[-1]
        _check_groups(name, c_in, groups)
        k, _, _, _, sizes, _, _ = geometry(n, input_shape[:-1])
        params = _kernel_and_bias(key, (*k, features // groups, c_in), features, w_init,
                                  b_init if use_bias else None, dtype)
        return (*sizes, features), params, {}

    def apply_fn(params, state, x, key, train):
        require_params(name, params, ("w", "b") if use_bias else ("w",))
        w = params["w"]
        n = w.ndim - 2 if isinstance(kernel_size, int) else len(kernel_size)
        _check_kernel(name, w, (*int_tuple(name, "kernel_size", kernel_size, max(n, 1)),
                                features // groups, None))
        c_in = w.shape[-1]
        _check_input(name, x, n, c_in)
        _, s, d, window, _, pads, op = geometry(n, x.shape[1:-1])
        # The transpose of conv(z, w): dilate x by the stride, pad by window - 1 - pad, and
        # correlate with the spatially flipped kernel whose I/O are swapped within each group.
        f_per_group = w.shape[-2]
        kernel = jnp.flip(w, tuple(range(n))).reshape(
            *w.shape[:n], f_per_group, groups, c_in // groups)
        kernel = jnp.swapaxes(kernel, n, n + 2).reshape(*w.shape[:n], c_in // groups,
                                                        f_per_group * groups)
        pads_t = tuple((wi - 1 - lo, wi - 1 - hi + o) for wi, (lo, hi), o in zip(window, pads, op))
        y = lax.conv_general_dilated(x, kernel, (1,) * n, pads_t, lhs_dilation=s, rhs_dilation=d,
                                     dimension_numbers=_dimension_numbers(n),
                                     feature_group_count=groups)
        return _add_bias(name, y, params, features), state

    return Layer(name, init_fn, apply_fn)


def _with_rank(rank, kernel_size, kwargs, default_name="conv"):
    """kernel_size as a rank-tuple, which fixes the spatial rank of Conv/ConvTranspose."""
    return int_tuple(kwargs.get("name", default_name), "kernel_size", kernel_size, rank)


def Conv1D(features: int, kernel_size, **kwargs) -> Layer:
    """:func:`Conv` over sequences: x (batch, length, C) -> (batch, out_length, features)."""
    return Conv(features, _with_rank(1, kernel_size, kwargs), **kwargs)


def Conv2D(features: int, kernel_size, **kwargs) -> Layer:
    """:func:`Conv` over images: x (batch, H, W, C) -> (batch, H_out, W_out, features)."""
    return Conv(features, _with_rank(2, kernel_size, kwargs), **kwargs)


def Conv3D(features: int, kernel_size, **kwargs) -> Layer:
    """:func:`Conv` over volumes: x (batch, D, H, W, C) -> (batch, D', H', W', features)."""
    return Conv(features, _with_rank(3, kernel_size, kwargs), **kwargs)


def ConvTranspose1D(features: int, kernel_size, **kwargs) -> Layer:
    """:func:`ConvTranspose` over sequences: x (batch, length, C) -> (batch, N, features)."""
    return ConvTranspose(features, _with_rank(1, kernel_size, kwargs, "conv_transpose"),
                         **kwargs)


def ConvTranspose2D(features: int, kernel_size, **kwargs) -> Layer:
    """:func:`ConvTranspose` over images: x (batch, H, W, C) -> (batch, H', W', features)."""
    return ConvTranspose(features, _with_rank(2, kernel_size, kwargs, "conv_transpose"),
                         **kwargs)


def ConvTranspose3D(features: int, kernel_size, **kwargs) -> Layer:
    """:func:`ConvTranspose` over volumes: x (batch, D, H, W, C) -> (batch, D', H', W', F)."""
    return ConvTranspose(features, _with_rank(3, kernel_size, kwargs, "conv_transpose"),
                         **kwargs)
