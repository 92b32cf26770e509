"""Adam and its family: Adam, NAdam, AdamW, AMSGrad, Adamax, Lion."""
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from fnn.optim import _validate
from fnn.optim._numerics import add, canonical_dtype, cast, debias, div, ema, increment, zeros_like
from fnn.optim.base import GradientTransformation, chain, scale_by_learning_rate
from fnn.optim.hyperparams import HyperparamFunction, decay
from fnn.optim.weight_decay import add_decayed_weights


class ScaleByAdamState(NamedTuple):
    """Step count and the moving averages of gradients (mu) and squared gradients (nu)."""

    count: jax.Array  # int32 scalar
    mu: Any
    nu: Any


def scale_by_adam(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype: Optional[Any] = None, *,
                  nesterov: bool = False):
    """Adam's step direction (Kingma & Ba, 2015).

    m_t = b1 m_{t-1} + (1 - b1) g_t,    v_t = b2 v_{t-1} + (1 - b2) g_t^2   (m_0 = v_0 = 0)
    m_hat = m_t / (1 - b1^t)
            (nesterov: b1 m_t / (1 - b1^(t+1)) + (1 - b1) g_t / (1 - b1^t))
    v_hat = v_t / (1 - b2^t)
    u_t = m_hat / (sqrt(v_hat + eps_root) + eps)

    Args:
      b1, b2: decay rates in [0, 1).
      eps: >= 0, outside the root.  eps_root: >= 0, inside it (for meta-gradients).
      mu_dtype: dtype to store m in (None: the parameters' dtype).
      nesterov: NAdam's look-ahead first moment (Dozat, 2016).

    Hyperparameters: b1, b2 (as ``Decay(rate, 1 - rate)``), eps, eps_root.
    """
    _validate.unit_interval("scale_by_adam", b1=b1, b2=b2)
    _validate.nonnegative("scale_by_adam", eps=eps, eps_root=eps_root)
    mu_dtype = canonical_dtype(mu_dtype)

    def init(params):
        return ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=zeros_like(params, mu_dtype),
                                nu=zeros_like(params))

    def update(h, updates, state, params=None):
        del params
        b1, b2, eps, eps_root = h["b1"], h["b2"], h["eps"], h["eps_root"]
        count = increment(state.count)
        mu = jax.tree.map(lambda g, m: ema(g, m, b1), updates, state.mu)
        nu = jax.tree.map(lambda g, v: ema(g ** 2, v, b2), updates, state.nu)
        if nesterov:
            mu_hat = jax.tree.map(lambda m, g: add(b1.rate * m, b1.complement * g),
                                  debias(mu, b1.rate, increment(count)),
                                  debias(updates, b1.rate, count))
        else:
            mu_hat = debias(mu, b1.rate, count)
        nu_hat = debias(nu, b2.rate, count)
        updates = jax.tree.map(lambda m, v: div(m, jnp.sqrt(v + eps_root) + eps), mu_hat, nu_hat)
        return updates, ScaleByAdamState(count=count, mu=cast(mu, mu_dtype), nu=nu)

    return GradientTransformation(init, HyperparamFunction(
        update, dict(b1=decay(b1), b2=decay(b2), eps=eps, eps_root=eps_root)))


def adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
         mu_dtype: Optional[Any] = None, *, nesterov: bool = False):
    """Adam (Kingma & Ba, 2015): p_t = p_{t-1} - lr * m_hat / (sqrt(v_hat + eps_root) + eps),
    with m_hat, v_hat the bias-corrected moving averages of ``scale_by_adam``.

    Args:
      learning_rate: lr >= 0 or a schedule.
      b1, b2: decay rates in [0, 1).
      eps, eps_root: >= 0, outside / inside the square root.
      mu_dtype: dtype to store the first moment in.
      nesterov: use NAdam's first moment (same as ``nadam``).

    Differs from: torch.optim.Adam has the same update, but its ``weight_decay`` adds
    wd * p to the gradient (L2, coupled): that is ``chain(add_decayed_weights(wd),
    adam(lr))``, not ``adamw``. Keras/TensorFlow Adam adds eps to sqrt(v_t) before bias
    correction ("epsilon hat", default 1e-7): the same as eps / sqrt(1 - b2^t) here.
    """
    _validate.unit_interval("adam", b1=b1, b2=b2)
    _validate.nonnegative("adam", learning_rate=learning_rate, eps=eps, eps_root=eps_root)
    return chain(scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                               nesterov=nesterov),
                 scale_by_learning_rate(learning_rate))


def nadam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
          mu_dtype: Optional[Any] = None):
    """NAdam (Dozat, 2016): ``adam`` with the Nesterov first moment
    m_hat = b1 m_t / (1 - b1^(t+1)) + (1 - b1) g_t / (1 - b1^t).

    Arguments as in ``adam``.

    Differs from: torch.optim.NAdam multiplies b1 by a warm-up schedule
    mu_t = b1 (1 - 0.5 * 0.96^(0.004 t)) (momentum_decay=0.004) and keeps a running product
    of the mu_t; no fnn argument reproduces that.
    """
    _validate.unit_interval("nadam", b1=b1, b2=b2)
    _validate.nonnegative("nadam", learning_rate=learning_rate, eps=eps, eps_root=eps_root)
    return adam(learning_rate, b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                nesterov=True)


def adamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
          mu_dtype: Optional[Any] = None, weight_decay=1e-4, mask=None, *,
          nesterov: bool = False):
    """AdamW, Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    p_t = p_{t-1} - lr * (m_hat / (sqrt(v_hat + eps_root) + eps) + weight_decay * p_{t-1})

    Args:
      learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov: as in ``adam``.
      weight_decay: >= 0 or a schedule; multiplied by the learning rate.
      mask: None, a pytree of bools like the params, or a function params -> such a tree;
        only True leaves are decayed (the Adam step applies to all).

    Differs from: torch.optim.AdamW computes the same step (p <- p (1 - lr wd), then the
    Adam step) but defaults to weight_decay=0.01; the paper multiplies wd by the schedule
    multiplier only, not by the base learning rate.
    """
    _validate.unit_interval("adamw", b1=b1, b2=b2)
    _validate.nonnegative("adamw", learning_rate=learning_rate, eps=eps, eps_root=eps_root,
                          weight_decay=weight_decay)
    return chain(scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                               nesterov=nesterov),
                 add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))


class ScaleByAmsgradState(NamedTuple):
    """Step count, moving averages mu and nu, and the running maximum nu_max."""

    count: jax.Array  # int32 scalar
    mu: Any
    nu: Any
    nu_max: Any


def scale_by_amsgrad(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype: Optional[Any] = None,
                     bias_correction_mu: bool = True, bias_correction_nu: bool = True):
    """AMSGrad's step direction (Reddi et al., 2018): Adam with a non-increasing step size.

    m_t, v_t as in Adam;  m_hat = m_t / (1 - b1^t)  (or m_t if not bias_correction_mu)
    v_eff = v_t / (1 - b2^t)  (or v_t if not bias_correction_nu)
    v_max_t = max(v_max_{t-1}, v_eff)
    u_t = m_hat / (sqrt(v_max_t + eps_root) + eps)

    Args: as in ``scale_by_adam``; bias_correction_mu / bias_correction_nu as above.
    Hyperparameters: as in ``scale_by_adam``.
    """
    _validate.unit_interval("scale_by_amsgrad", b1=b1, b2=b2)
    _validate.nonnegative("scale_by_amsgrad", eps=eps, eps_root=eps_root)
    mu_dtype = canonical_dtype(mu_dtype)

    def init(params):
        return ScaleByAmsgradState(count=jnp.zeros([], jnp.int32),
                                   mu=zeros_like(params, mu_dtype), nu=zeros_like(params),
                                   nu_max=zeros_like(params))

    def update(h, updates, state, params=None):
        del params
        b1, b2, eps, eps_root = h["b1"], h["b2"], h["eps"], h["eps_root"]
        count = increment(state.count)
        mu = jax.tree.map(lambda g, m: ema(g, m, b1), updates, state.mu)
        nu = jax.tree.map(lambda g, v: ema(g ** 2, v, b2), updates, state.nu)
        mu_hat = debias(mu, b1.rate, count) if bias_correction_mu else mu
        nu_eff = debias(nu, b2.rate, count) if bias_correction_nu else nu
        nu_max = jax.tree.map(jnp.maximum, state.nu_max, nu_eff)
        updates = jax.tree.map(lambda m, v: div(m, jnp.sqrt(v + eps_root) + eps), mu_hat, nu_max)
        return updates, ScaleByAmsgradState(count=count, mu=cast(mu, mu_dtype), nu=nu,
                                            nu_max=nu_max)

    return GradientTransformation(init, HyperparamFunction(
        update, dict(b1=decay(b1), b2=decay(b2), eps=eps, eps_root=eps_root)))


def amsgrad(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
            mu_dtype: Optional[Any] = None, bias_correction_mu: bool = True,
            bias_correction_nu: bool = True):
    """AMSGrad: p_t = p_{t-1} - lr * m_hat / (sqrt(v_max_t + eps_root) + eps), with
    v_max_t = max(v_max_{t-1}, v_hat_t) the running maximum of the bias-corrected v.

    Args: as in ``adam``; bias_correction_mu / bias_correction_nu switch the corrections
      off (both False: the paper's algorithm).

    Differs from: torch.optim.Adam(amsgrad=True) takes the maximum of the raw v_t and
    bias-corrects afterwards, sqrt(max_s v_s) / sqrt(1 - b2^t); the two agree while v_hat
    grows and differ once it falls (after a large gradient, torch's step is larger).
    """
    _validate.unit_interval("amsgrad", b1=b1, b2=b2)
    _validate.nonnegative("amsgrad", learning_rate=learning_rate, eps=eps, eps_root=eps_root)
    return chain(scale_by_amsgrad(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                                  bias_correction_mu=bias_correction_mu,
                                  bias_correction_nu=bias_correction_nu),
                 scale_by_learning_rate(learning_rate))


def scale_by_adamax(b1=0.9, b2=0.999, eps=1e-8):
    """Adamax's step direction (Kingma & Ba, 2015, sec. 7): Adam with an infinity norm.

    m_t = b1 m_{t-1} + (1 - b1) g_t
    v_t = max(|g_t| + eps, b2 v_{t-1})
    u_t = m_t / (1 - b1^t) / v_t

    Args:
      b1: in [0, 1), averaging rate of m.  b2: in [0, 1), decay of the running maximum.
      eps: >= 0, added to |g_t| (so v_t > 0).

    Hyperparameters: b1 (``Decay``), b2 (its rate only), eps.
    """
    _validate.unit_interval("scale_by_adamax", b1=b1, b2=b2)
    _validate.nonnegative("scale_by_adamax", eps=eps)

    def init(params):
        return ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=zeros_like(params),
                                nu=zeros_like(params))

    def update(h, updates, state, params=None):
        del params
        b1, b2, eps = h["b1"], h["b2"], h["eps"]
        count = increment(state.count)
        mu = jax.tree.map(lambda g, m: ema(g, m, b1), updates, state.mu)
        nu = jax.tree.map(lambda g, v: jnp.maximum(jnp.abs(g) + eps, b2 * v), updates, state.nu)
        updates = jax.tree.map(lambda m, v: m / v, debias(mu, b1.rate, count), nu)
        return updates, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init, HyperparamFunction(
        update, dict(b1=decay(b1), b2=b2, eps=eps)))


def adamax(learning_rate, b1=0.9, b2=0.999, eps=1e-8):
    """Adamax: p_t = p_{t-1} - lr * m_t / (1 - b1^t) / max(|g_t| + eps, b2 v_{t-1}).

    Args:
      learning_rate: lr >= 0 or a schedule.  b1, b2: in [0, 1).  eps: >= 0.

    Differs from: nothing in torch.optim.Adamax (same eps placement, inside the max).
    """
    _validate.unit_interval("adamax", b1=b1, b2=b2)
    _validate.nonnegative("adamax", learning_rate=learning_rate, eps=eps)
    return chain(scale_by_adamax(b1=b1, b2=b2, eps=eps), scale_by_learning_rate(learning_rate))


class ScaleByLionState(NamedTuple):
    """Step count and the momentum mu."""

    count: jax.Array  # int32 scalar
    mu: Any


def scale_by_lion(b1=0.9, b2=0.99, mu_dtype: Optional[Any] = None, *, mode: str = "hard",
                  smooth_beta: float = 1.0):
    """Lion's step direction (Chen et al., 2023): the sign of an interpolated momentum.

    c_t = (1 - b1) g_t + b1 m_{t-1}
    u_t = sign(c_t)   (mode "hard"; "smooth": tanh(smooth_beta c_t);
                       "refined": c_t where |c_t| < 1, else sign(c_t))
    m_t = b2 m_{t-1} + (1 - b2) g_t

    Args:
      b1: in [0, 1), weight of the momentum in the step.  b2: in [0, 1), its decay rate.
      mu_dtype: dtype of the momentum.  mode, smooth_beta: the sign variant (above).

    Hyperparameters: b1, b2 (``Decay``); the mode and smooth_beta are structure.
    """
    _validate.unit_interval("scale_by_lion", b1=b1, b2=b2)
    signs = {"hard": jnp.sign,
             "smooth": lambda c: jnp.tanh(smooth_beta * c),
             "refined": lambda c: jnp.where(jnp.abs(c) < 1.0, c, jnp.sign(c))}
    if mode not in signs:
        raise ValueError(f"scale_by_lion: mode must be one of {sorted(signs)}, got {mode!r}")
    sign, mu_dtype = signs[mode], canonical_dtype(mu_dtype)

    def init(params):
        return ScaleByLionState(count=jnp.zeros([], jnp.int32), mu=zeros_like(params, mu_dtype))

    def update(h, updates, state, params=None):
        del params
        b1, b2 = h["b1"], h["b2"]
        direction = jax.tree.map(lambda g, m: sign(add(b1.complement * g, b1.rate * m)),
                                 updates, state.mu)
        mu = jax.tree.map(lambda g, m: ema(g, m, b2), updates, state.mu)
        return direction, ScaleByLionState(count=increment(state.count), mu=cast(mu, mu_dtype))

    return GradientTransformation(init, HyperparamFunction(update, dict(b1=decay(b1),
                                                                        b2=decay(b2))))


def lion(learning_rate, b1=0.9, b2=0.99, mu_dtype: Optional[Any] = None, weight_decay=1e-3,
         mask=None):
    """Lion: p_t = p_{t-1} - lr * (sign((1 - b1) g_t + b1 m_{t-1}) + weight_decay * p_{t-1}),
    m_t = b2 m_{t-1} + (1 - b2) g_t.

    Args:
      learning_rate: lr >= 0 or a schedule (typically 3-10x smaller than Adam's).
      b1, b2: in [0, 1).  mu_dtype: dtype of the momentum.
      weight_decay: >= 0 or a schedule; decoupled and multiplied by lr, as in ``adamw``.
      mask: which parameters are decayed (as in ``adamw``).

    Differs from: torch.optim has no Lion.
    """
    _validate.unit_interval("lion", b1=b1, b2=b2)
    _validate.nonnegative("lion", learning_rate=learning_rate, weight_decay=weight_decay)
    return chain(scale_by_lion(b1=b1, b2=b2, mu_dtype=mu_dtype),
                 add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))
