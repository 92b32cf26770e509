"""Hand-derived forward and backward passes in plain NumPy: the reference for ``jax.grad``.

Nothing here imports JAX. Each operation is one short function, written the way the notes
write it (the two-layer NumPy net of ``affine_forward``/``affine_backward``, and the worked
2-2-2 sigmoid example with the delta rule). The tests check every function below against
``jax.grad``/``jax.vjp`` of the corresponding :mod:`fnn` code, in float64.

Conventions:
  * ``forward(x, ...) -> out`` (or ``(out, cache)`` for layers), and
    ``backward(dout, x_or_cache, ...) -> dx``: ``dout`` is dLoss/dout, the upstream gradient,
    with the shape of ``out``; ``dx`` is dLoss/dx with the shape of ``x``.
  * Elementwise activations: ``name_backward(dout, x) = dout * f'(x)``, evaluated at the
    *input* x of the activation (the notes' net), not at its output.
  * softmax / log_softmax act along the last axis; their backward is the Jacobian-vector
    product ``dx = J(x)^T dout`` row by row.
  * Losses return ``(loss, dpred)``: the scalar and its gradient w.r.t. the predictions.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = [
    "affine_forward", "affine_backward",
    "step", "step_backward", "sigmoid", "sigmoid_backward", "tanh", "tanh_backward",
    "relu", "relu_backward", "leaky_relu", "leaky_relu_backward", "elu", "elu_backward",
    "selu", "selu_backward", "gelu", "gelu_backward", "softplus", "softplus_backward",
    "swish", "swish_backward", "softmax", "softmax_backward", "log_softmax",
    "log_softmax_backward", "maxout_forward", "maxout_backward", "ACTIVATIONS",
    "softmax_cross_entropy", "binary_cross_entropy", "mse", "sum_of_halves", "LOSSES",
    "mlp_forward", "mlp_backward",
]


# ----------------------------------------------------------------------------- affine

def affine_forward(x, w, b):
    """out = x W + b (the notes' H = X W1 + b1).

    Shapes: x (N, D) (or (N, d1, ..., dk), flattened to (N, D)), w (D, M), b (M,) or None.
    Returns ``(out, cache)``: out (N, M), cache = (x, w, b).
    """
    out = x.reshape(x.shape[0], -1) @ w
    if b is not None:
        out = out + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    """Backward of out = x W + b, given dout = dL/dout (N, M):

        dx = dout W^T      (N, D), reshaped to x's shape
        dW = x^T dout      (D, M)
        db = sum_n dout    (M,)   (None when the layer has no bias)
    """
    x, w, b = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = None if b is None else dout.sum(axis=0)
    return dx, dw, db


# ----------------------------------------------------------------------------- activations

def step(x):
    """Heaviside step: 1 if x > 0 else 0."""
    return (x > 0).astype(x.dtype)


def step_backward(dout, x):
    """step'(x) = 0 everywhere (undefined at 0): no gradient flows through a threshold."""
    return np.zeros_like(dout)


def sigmoid(x):
    """sigma(x) = 1 / (1 + exp(-x)), computed without overflow:
    1 / (1 + e^-|x|) for x >= 0 and e^-|x| / (1 + e^-|x|) for x < 0."""
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))


def sigmoid_backward(dout, x):
    """sigma'(x) = sigma(x) (1 - sigma(x)), so dx = dout * out (1 - out)."""
    s = sigmoid(x)
    return dout * s * (1 - s)


def tanh(x):
    """tanh(x) = (e^x - e^-x) / (e^x + e^-x)."""
    return np.tanh(x)


def tanh_backward(dout, x):
    """tanh'(x) = 1 - tanh(x)^2."""
    return dout * (1 - np.tanh(x) ** 2)


def relu(x):
    """max(0, x)."""
    return np.maximum(x, 0)


def relu_backward(dout, x):
    """relu'(x) = 1 if x > 0 else 0 (0 at x = 0): the notes' ``dh[h <= 0] = 0``."""
    dx = dout.copy()
    dx[x <= 0] = 0
    return dx


def leaky_relu(x, alpha=0.01):
    """x if x > 0 else alpha x."""
    return np.where(x > 0, x, alpha * x)


def leaky_relu_backward(dout, x, alpha=0.01):
    """f'(x) = 1 if x > 0 else alpha."""
    return np.where(x > 0, dout, alpha * dout)


def elu(x, alpha=1.0):
    """x if x > 0 else alpha (exp(x) - 1)."""
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def elu_backward(dout, x, alpha=1.0):
    """f'(x) = 1 if x > 0 else alpha exp(x)  (= f(x) + alpha for x <= 0)."""
    return np.where(x > 0, dout, dout * alpha * np.exp(np.minimum(x, 0)))


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def selu(x):
    """scale * elu(x, alpha) with alpha = 1.6732632..., scale = 1.0507009... (Klambauer 2017)."""
    return SELU_SCALE * elu(x, SELU_ALPHA)


def selu_backward(dout, x):
    """f'(x) = scale if x > 0 else scale alpha exp(x)."""
    return SELU_SCALE * elu_backward(dout, x, SELU_ALPHA)


_erfc = np.vectorize(math.erfc, otypes=[np.float64])  # NumPy has no erf; math's, elementwise


def _normal_cdf(x):
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2 = erfc(-x / sqrt 2) / 2 (no cancellation for x << 0)."""
    return 0.5 * _erfc(-x / math.sqrt(2))


def gelu(x, approximate=False):
    """x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2 the standard normal CDF (exact form);
    ``approximate=True``: 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3)."""
    if approximate:
        u = math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)
        return 0.5 * x * (1 + np.tanh(u))
    return (x * _normal_cdf(x)).astype(x.dtype)


def gelu_backward(dout, x, approximate=False):
    """Exact: f'(x) = Phi(x) + x phi(x), phi(x) = exp(-x^2/2) / sqrt(2 pi).
    Approximate: f'(x) = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 0.044715 x^2)."""
    if approximate:
        c = math.sqrt(2 / math.pi)
        t = np.tanh(c * (x + 0.044715 * x ** 3))
        return dout * (0.5 * (1 + t) + 0.5 * x * (1 - t ** 2) * c * (1 + 3 * 0.044715 * x ** 2))
    cdf = _normal_cdf(x)
    pdf = np.exp(-0.5 * x ** 2) / math.sqrt(2 * math.pi)
    return (dout * (cdf + x * pdf)).astype(dout.dtype)


def softplus(x):
    """log(1 + e^x) = max(x, 0) + log(1 + e^-|x|) (no overflow)."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def softplus_backward(dout, x):
    """softplus'(x) = e^x / (1 + e^x) = sigmoid(x)."""
    return dout * sigmoid(x)


def swish(x):
    """x sigmoid(x) (SiLU)."""
    return x * sigmoid(x)


def swish_backward(dout, x):
    """f'(x) = s + x s (1 - s), s = sigmoid(x)."""
    s = sigmoid(x)
    return dout * (s + x * s * (1 - s))


def softmax(x):
    """y_i = exp(x_i - max x) / sum_j exp(x_j - max x) along the last axis."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(dout, x):
    """dy_i/dx_j = y_i (delta_ij - y_j), so dx = J^T dout = y * (dout - sum_j dout_j y_j)
    along the last axis."""
    y = softmax(x)
    return y * (dout - (dout * y).sum(axis=-1, keepdims=True))


def log_softmax(x):
    """x_i - logsumexp(x) = (x_i - m) - log sum_j exp(x_j - m), m = max x (stable for |x| ~ 1e4)."""
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def log_softmax_backward(dout, x):
    """d(log y_i)/dx_j = delta_ij - y_j, so dx = dout - softmax(x) * sum_i dout_i."""
    return dout - softmax(x) * dout.sum(axis=-1, keepdims=True)


ACTIVATIONS = {
    f.__name__: (f, b) for f, b in [
        (step, step_backward), (sigmoid, sigmoid_backward), (tanh, tanh_backward),
        (relu, relu_backward), (leaky_relu, leaky_relu_backward), (elu, elu_backward),
        (selu, selu_backward), (gelu, gelu_backward), (softplus, softplus_backward),
        (swish, swish_backward), (softmax, softmax_backward),
        (log_softmax, log_softmax_backward)]
}
"""name -> (forward(x, **kw), backward(dout, x, **kw)), the same names as fnn.activations."""


# ----------------------------------------------------------------------------- maxout

def maxout_forward(x, w, b):
    """z[n, j, k] = sum_i x[n, i] w[i, j, k] + b[j, k];  out[n, j] = max_k z[n, j, k].

    Shapes: x (N, D), w (D, units, pieces), b (units, pieces) -> out (N, units).
    Returns ``(out, cache)``, cache = (x, w, b, z).
    """
    z = np.einsum("ni,ijk->njk", x, w) + b
    return z.max(axis=-1), (x, w, b, z)


def maxout_backward(dout, cache):
    """Only the winning piece k* = argmax_k z[n, j, k] gets the gradient (like a max-pool):

        dz[n, j, k] = dout[n, j] if k == k* else 0
        dx = sum_jk dz w^T,  dW[i, j, k] = sum_n x[n, i] dz[n, j, k],  db = sum_n dz

    (With tied pieces this routes everything to the first; jax.grad splits it evenly.)
    """
    x, w, b, z = cache
    dz = np.zeros_like(z)
    np.put_along_axis(dz, z.argmax(axis=-1)[..., None], dout[..., None], axis=-1)
    dx = np.einsum("njk,ijk->ni", dz, w)
    dw = np.einsum("ni,njk->ijk", x, dz)
    return dx, dw, dz.sum(axis=0)


# ----------------------------------------------------------------------------- losses

def softmax_cross_entropy(logits, labels):
    """L = -(1/N) sum_n log softmax(logits)[n, t_n], from logits (N, C).

    ``labels``: integer classes t (N,), or one-hot/probability targets y (N, C).
    dL/dlogits = (softmax(logits) - onehot(t)) / N -- the notes'
    ``dx = probs; dx[range(N), t] -= 1; dx /= N``.
    """
    n = logits.shape[0]
    logp = log_softmax(logits)
    probs = np.exp(logp)
    if labels.ndim == 1:
        loss = -logp[np.arange(n), labels].sum() / n
        dx = probs.copy()
        dx[np.arange(n), labels] -= 1
    else:
        loss = -(labels * logp).sum() / n
        dx = probs - labels
    return loss, dx / n


def binary_cross_entropy(logits, targets):
    """L = mean -[t log s + (1 - t) log(1 - s)], s = sigmoid(z) = mean softplus(z) - t z.
    dL/dz = (s - t) / size."""
    loss = (softplus(logits) - targets * logits).mean()
    return loss, (sigmoid(logits) - targets) / logits.size


def mse(pred, target):
    """L = mean (o - t)^2 over all elements; dL/do = 2 (o - t) / size."""
    diff = pred - target
    return (diff ** 2).mean(), 2 * diff / diff.size


def sum_of_halves(pred, target):
    """The notes' E = sum 1/2 (t - o)^2 (no mean); dE/do = -(t - o)."""
    return 0.5 * ((target - pred) ** 2).sum(), -(target - pred)


LOSSES = {f.__name__: f for f in (softmax_cross_entropy, binary_cross_entropy, mse,
                                  sum_of_halves)}
"""name -> loss(pred, target) -> (loss, dpred), the same names as fnn.losses."""


# ----------------------------------------------------------------------------- MLP

def _activation(spec):
    """``'relu'`` or ``('elu', {'alpha': 0.5})`` -> (forward(x), backward(dout, x))."""
    name, kwargs = (spec, {}) if isinstance(spec, str) else spec
    if name not in ACTIVATIONS:
        raise ValueError(f"manual: unknown activation {name!r}; expected one of "
                         f"{sorted(ACTIVATIONS)}")
    f, b = ACTIVATIONS[name]
    return (lambda x: f(x, **kwargs)), (lambda dout, x: b(dout, x, **kwargs))


def _dense_names(params):
    """``['dense_0', 'dense_1', ...]`` in layer order; anything else is refused."""
    names = sorted(params, key=lambda k: int(k.rsplit("_", 1)[1]) if k.startswith("dense_")
                   and k.rsplit("_", 1)[1].isdigit() else -1)
    if not names or [f"dense_{i}" for i in range(len(names))] != names:
        raise ValueError(f"manual: expected params {{'dense_0': ..., 'dense_1': ...}} from "
                         f"fnn.serial(Dense, act, Dense, ...), got keys {sorted(params)}")
    return names


def mlp_forward(params, x, activation="relu", output_activation=None):
    """a_0 = x;  net_l = a_{l-1} W_l + b_l;  a_l = f(net_l) (hidden), a_L = g(net_L) (output).

    ``params`` is fnn's layout ``{'dense_0': {'w', 'b'}, 'dense_1': ...}`` as made by
    ``fnn.serial(Dense(h1), act, ..., Dense(out)[, out_act])``; ``activation`` and
    ``output_activation`` (None: identity) are names of :data:`ACTIVATIONS` or
    ``(name, kwargs)`` pairs such as ``('elu', {'alpha': 0.5})``.

    Shapes: x (N, D) -> out (N, M). Returns ``(out, cache)`` with cache = ([a_0, ..., a_{L-1}],
    [net_1, ..., net_L]) for :func:`mlp_backward`.
    """
    names = _dense_names(params)
    f, _ = _activation(activation)
    a, inputs, nets = x, [], []
    for i, name in enumerate(names):
        inputs.append(a)
        net, _ = affine_forward(a, params[name]["w"], params[name].get("b"))
        nets.append(net)
        if i < len(names) - 1:
            a = f(net)
        else:
            a = net if output_activation is None else _activation(output_activation)[0](net)
    return a, (inputs, nets)


def mlp_backward(params, x, y, activation="relu", loss="softmax_cross_entropy",
                 output_activation=None, reg=0.0):
    """Backpropagation by the delta rule, delta_l = dLoss/dnet_l (N, n_l):

        delta_L = dLoss/da_L * g'(net_L)                 (g: output activation, identity if None)
        delta_l = (delta_{l+1} W_{l+1}^T) * f'(net_l)    (f: hidden activation)
        dW_l    = a_{l-1}^T delta_l + reg W_l,   db_l = sum_n delta_l

    (for softmax/log_softmax, "* f'" is their Jacobian-vector product).

    ``loss`` is a name of :data:`LOSSES`: ``'softmax_cross_entropy'`` (from logits, y integer
    labels (N,)), ``'mse'`` or ``'sum_of_halves'`` (y (N, M)). ``reg`` adds the notes' L2 term
    reg/2 sum_l ||W_l||^2 (biases excluded) to the loss, i.e. ``dW += reg * W``.

    Returns ``(loss, grads)``, grads shaped like ``params``.
    """
    if loss not in LOSSES:
        raise ValueError(f"manual: unknown loss {loss!r}; expected one of {sorted(LOSSES)}")
    names = _dense_names(params)
    _, f_backward = _activation(activation)
    out, (inputs, nets) = mlp_forward(params, x, activation, output_activation)
    value, dout = LOSSES[loss](out, y)

    delta = dout if output_activation is None else _activation(output_activation)[1](dout, nets[-1])
    grads = {}
    for i in reversed(range(len(names))):
        w, b = params[names[i]]["w"], params[names[i]].get("b")
        da, dw, db = affine_backward(delta, (inputs[i], w, b))
        grads[names[i]] = {"w": dw + reg * w}
        if b is not None:
            grads[names[i]]["b"] = db
        value = value + 0.5 * reg * (w ** 2).sum()
        if i > 0:
            delta = f_backward(da, nets[i - 1])
    return value, grads


# ----------------------------------------------------------------------------- RNN (BPTT)

__all__ += ["rnn_forward", "rnn_backward"]


def rnn_forward(x, h0, w_ih, w_hh, b, activation="tanh"):
    """The Elman RNN unrolled over time (fnn.SimpleRNNCell's formula):

        a_t = x_t W_ih + h_{t-1} W_hh + b,   h_t = f(a_t),   t = 1..T,  f = tanh or relu

    Shapes: x (N, T, D), h0 (N, H), w_ih (D, H), w_hh (H, H), b (H,) -> hs (N, T, H).
    Returns ``(hs, cache)``; cache = (x, h0, w_ih, w_hh, a, hs, activation).
    """
    if activation not in ("tanh", "relu"):
        raise ValueError(f"manual.rnn_forward: activation must be 'tanh' or 'relu', got "
                         f"{activation!r}")
    f = ACTIVATIONS[activation][0]
    n, t_len, _ = x.shape
    a = np.empty((n, t_len, w_hh.shape[0]), dtype=np.result_type(x, w_ih))
    hs = np.empty_like(a)
    h = h0
    for t in range(t_len):
        a[:, t] = x[:, t] @ w_ih + h @ w_hh + b
        h = hs[:, t] = f(a[:, t])
    return hs, (x, h0, w_ih, w_hh, a, hs, activation)


def rnn_backward(dhs, cache, dh_last=None):
    """Backpropagation through time for :func:`rnn_forward`, from t = T down to 1.

    ``dhs`` (N, T, H) is dLoss/dh_t coming from above (the outputs); ``dh_last`` (N, H) an
    optional extra gradient on the final state h_T. With delta_t = dLoss/da_t:

        dh_t    = dhs_t + delta_{t+1} W_hh^T          (the future's share; 0 at t = T)
        delta_t = dh_t * f'(a_t)
        dW_ih   = sum_t x_t^T delta_t,   dW_hh = sum_t h_{t-1}^T delta_t,   db = sum_t,n delta_t
        dx_t    = delta_t W_ih^T,        dh0   = delta_1 W_hh^T

    Returns ``(dx (N, T, D), dh0 (N, H), dw_ih (D, H), dw_hh (H, H), db (H,))``.
    """
    x, h0, w_ih, w_hh, a, hs, activation = cache
    f_backward = ACTIVATIONS[activation][1]
    dx = np.zeros_like(x, dtype=np.result_type(x, dhs))
    dw_ih, dw_hh = np.zeros_like(w_ih), np.zeros_like(w_hh)
    db = np.zeros(w_hh.shape[0], dtype=w_hh.dtype)
    dh_next = np.zeros_like(h0) if dh_last is None else dh_last
    for t in reversed(range(x.shape[1])):
        h_prev = hs[:, t - 1] if t > 0 else h0
        delta = f_backward(dhs[:, t] + dh_next, a[:, t])
        dw_ih += x[:, t].T @ delta
        dw_hh += h_prev.T @ delta
        db += delta.sum(axis=0)
        dx[:, t] = delta @ w_ih.T
        dh_next = delta @ w_hh.T
    return dx, dh_next, dw_ih, dw_hh, db
