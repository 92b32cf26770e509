"""Per-coordinate adaptive step sizes: Adagrad, RMSProp, Adadelta."""
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from fnn.optim import _validate
from fnn.optim._numerics import debias, ema, full_like, increment, zeros_like
from fnn.optim.base import GradientTransformation, chain, identity, scale_by_learning_rate
from fnn.optim.hyperparams import HyperparamFunction, decay as decay_of
from fnn.optim.sgd import trace
from fnn.optim.weight_decay import add_decayed_weights


class ScaleByRssState(NamedTuple):
    """Running sum of squared gradients."""

    sum_of_squares: Any


def scale_by_rss(initial_accumulator_value=0.1, eps=1e-7):
    """Divide by the root of the sum of all squared gradients so far (Adagrad's scaling).

    s_t = s_{t-1} + g_t^2          (s_0 = initial_accumulator_value)
    u_t = g_t / sqrt(s_t + eps)    (0 where s_t = 0)

    Args:
      initial_accumulator_value: s_0 >= 0.
      eps: added inside the square root, >= 0.

    Hyperparameters: ``{'eps': eps}`` (s_0 is used by ``init`` only).
    """
    _validate.nonnegative("scale_by_rss", initial_accumulator_value=initial_accumulator_value,
                          eps=eps)

    def init(params):
        return ScaleByRssState(sum_of_squares=full_like(params, initial_accumulator_value))

    def update(h, updates, state, params=None):
        del params
        eps = h["eps"]
        sum_of_squares = jax.tree.map(lambda g, s: g ** 2 + s, updates, state.sum_of_squares)
        inv_root = jax.tree.map(lambda s: jnp.where(s > 0, jax.lax.rsqrt(s + eps), 0.0),
                                sum_of_squares)
        updates = jax.tree.map(lambda r, g: r * g, inv_root, updates)
        return updates, ScaleByRssState(sum_of_squares=sum_of_squares)

    return GradientTransformation(init, HyperparamFunction(update, {"eps": eps}))


def adagrad(learning_rate, initial_accumulator_value=0.1, eps=1e-7):
    """Adagrad (Duchi et al., 2011).

    s_t = s_{t-1} + g_t^2,   s_0 = initial_accumulator_value
    p_t = p_{t-1} - lr * g_t / sqrt(s_t + eps)

    Args:
      learning_rate: lr >= 0 or a schedule.
      initial_accumulator_value: s_0 >= 0.
      eps: >= 0, inside the square root.

    Differs from: torch.optim.Adagrad starts at s_0 = 0 and puts eps = 1e-10 outside the
    root, g / (sqrt(s) + eps); ``adagrad(lr, initial_accumulator_value=0.0, eps=0.0)``
    matches it up to that 1e-10. torch's ``lr_decay`` is
    ``adagrad(inverse_time_decay(lr, lr_decay))``.
    """
    _validate.nonnegative("adagrad", learning_rate=learning_rate,
                          initial_accumulator_value=initial_accumulator_value, eps=eps)
    return chain(scale_by_rss(initial_accumulator_value=initial_accumulator_value, eps=eps),
                 scale_by_learning_rate(learning_rate))


class ScaleByRmsState(NamedTuple):
    """Moving average of squared gradients."""

    nu: Any


class ScaleByRmsWithCountState(NamedTuple):
    """Moving average of squared gradients and the step count (for bias correction)."""

    count: jax.Array  # int32 scalar
    nu: Any


def _inverse_root(eps, eps_in_sqrt):
    """v -> 1 / sqrt(v + eps) if eps_in_sqrt else 1 / (sqrt(v) + eps)."""
    if eps_in_sqrt:
        return lambda v: jax.lax.rsqrt(v + eps)
    return lambda v: 1 / (jnp.sqrt(v) + eps)


def scale_by_rms(decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt: bool = True,
                 bias_correction: bool = False):
    """Divide by the root of a moving average of squared gradients (RMSProp's scaling).

    v_t = decay * v_{t-1} + (1 - decay) * g_t^2      (v_0 = initial_scale)
    v_hat = v_t / (1 - decay^t) if bias_correction else v_t
    u_t = g_t / sqrt(v_hat + eps)       (eps_in_sqrt=True)
    u_t = g_t / (sqrt(v_hat) + eps)     (eps_in_sqrt=False)

    Args:
      decay: in [0, 1).  eps: >= 0.  initial_scale: v_0 >= 0.
      eps_in_sqrt: where eps goes (see above).  bias_correction: divide v_t by 1 - decay^t.

    Hyperparameters: decay (``Decay``), eps (v_0 is used by ``init`` only).
    """
    _validate.unit_interval("scale_by_rms", decay=decay)
    _validate.nonnegative("scale_by_rms", eps=eps, initial_scale=initial_scale)

    def init(params):
        nu = full_like(params, initial_scale)
        if bias_correction:
            return ScaleByRmsWithCountState(count=jnp.zeros([], jnp.int32), nu=nu)
        return ScaleByRmsState(nu=nu)

    def update(h, updates, state, params=None):
        del params
        decay, inverse_root = h["decay"], _inverse_root(h["eps"], eps_in_sqrt)
        nu = jax.tree.map(lambda g, v: ema(g ** 2, v, decay), updates, state.nu)
        if bias_correction:
            count = increment(state.count)
            nu_hat = debias(nu, decay.rate, count)
            new_state = ScaleByRmsWithCountState(count=count, nu=nu)
        else:
            nu_hat = nu
            new_state = ScaleByRmsState(nu=nu)
        updates = jax.tree.map(lambda v, g: inverse_root(v) * g, nu_hat, updates)
        return updates, new_state

    return GradientTransformation(init, HyperparamFunction(update, dict(decay=decay_of(decay),
                                                                        eps=eps)))


class ScaleByRStdDevState(NamedTuple):
    """Moving averages of gradients and of squared gradients."""

    mu: Any
    nu: Any


class ScaleByRStdDevWithCountState(NamedTuple):
    """Moving averages of gradients and squared gradients, and the step count."""

    count: jax.Array  # int32 scalar
    mu: Any
    nu: Any


def scale_by_stddev(decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt: bool = True,
                    bias_correction: bool = False):
    """Divide by a running estimate of the gradient's standard deviation (centered RMSProp).

    m_t = decay * m_{t-1} + (1 - decay) * g_t          (m_0 = 0)
    v_t = decay * v_{t-1} + (1 - decay) * g_t^2        (v_0 = initial_scale)
    (m_hat, v_hat) = (m_t, v_t) / (1 - decay^t) if bias_correction else (m_t, v_t)
    u_t = g_t / sqrt(v_hat - m_hat^2 + eps)     (eps_in_sqrt=True)
    u_t = g_t / (sqrt(v_hat - m_hat^2) + eps)   (eps_in_sqrt=False)

    Args: as in ``scale_by_rms``.  Hyperparameters: as in ``scale_by_rms``.
    """
    _validate.unit_interval("scale_by_stddev", decay=decay)
    _validate.nonnegative("scale_by_stddev", eps=eps, initial_scale=initial_scale)

    def init(params):
        mu, nu = zeros_like(params), full_like(params, initial_scale)
        if bias_correction:
            return ScaleByRStdDevWithCountState(count=jnp.zeros([], jnp.int32), mu=mu, nu=nu)
        return ScaleByRStdDevState(mu=mu, nu=nu)

    def update(h, updates, state, params=None):
        del params
        decay, inverse_root = h["decay"], _inverse_root(h["eps"], eps_in_sqrt)
        mu = jax.tree.map(lambda g, m: ema(g, m, decay), updates, state.mu)
        nu = jax.tree.map(lambda g, v: ema(g ** 2, v, decay), updates, state.nu)
        if bias_correction:
            count = increment(state.count)
            mu_hat = debias(mu, decay.rate, count)
            nu_hat = debias(nu, decay.rate, count)
            new_state = ScaleByRStdDevWithCountState(count=count, mu=mu, nu=nu)
        else:
            mu_hat, nu_hat = mu, nu
            new_state = ScaleByRStdDevState(mu=mu, nu=nu)
        updates = jax.tree.map(lambda m, v, g: inverse_root(v - m ** 2) * g,
                               mu_hat, nu_hat, updates)
        return updates, new_state

    return GradientTransformation(init, HyperparamFunction(update, dict(decay=decay_of(decay),
                                                                        eps=eps)))


def rmsprop(learning_rate, decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt: bool = True,
            centered: bool = False, momentum: Optional[Any] = None, nesterov: bool = False,
            bias_correction: bool = False):
    """RMSProp (Hinton, 2012), optionally centered and with momentum.

    v_t = decay * v_{t-1} + (1 - decay) * g_t^2,   v_0 = initial_scale
    d_t = lr * g_t / sqrt(v_t + eps)                   (see scale_by_rms / scale_by_stddev
                                                        for centered, eps_in_sqrt, bias_correction)
    p_t = p_{t-1} - d_t                                (momentum=None)
    p_t = p_{t-1} - b_t,  b_t = d_t + momentum * b_{t-1}   (momentum; nesterov as in ``trace``)

    Args:
      learning_rate: lr >= 0 or a schedule.
      decay: in [0, 1), averaging rate of the squared gradients.
      eps: >= 0; added inside the root (eps_in_sqrt=True) or outside it.
      initial_scale: v_0 >= 0.
      centered: divide by the root of v_t - m_t^2 (variance) instead of v_t.
      momentum: None or >= 0; the momentum buffer accumulates lr-scaled steps.
      bias_correction: divide the moving averages by 1 - decay^t.

    Differs from: torch.optim.RMSprop uses alpha=0.99 and eps=1e-8 outside the root,
    g / (sqrt(v) + eps); get it with ``rmsprop(lr, decay=0.99, eps_in_sqrt=False)``
    (its centered and momentum options then match too).
    """
    _validate.unit_interval("rmsprop", decay=decay)
    _validate.nonnegative("rmsprop", learning_rate=learning_rate, eps=eps,
                          initial_scale=initial_scale, momentum=momentum)
    scaling = scale_by_stddev if centered else scale_by_rms
    return chain(
        scaling(decay=decay, eps=eps, initial_scale=initial_scale, eps_in_sqrt=eps_in_sqrt,
                bias_correction=bias_correction),
        scale_by_learning_rate(learning_rate),
        identity() if momentum is None else trace(decay=momentum, nesterov=nesterov),
    )


class ScaleByAdaDeltaState(NamedTuple):
    """Moving averages of squared gradients (e_g) and of squared updates (e_x)."""

    e_g: Any
    e_x: Any


def scale_by_adadelta(rho=0.9, eps=1e-6):
    """Adadelta's unit-correcting scaling (Zeiler, 2012).

    E[g^2]_t  = rho * E[g^2]_{t-1} + (1 - rho) * g_t^2
    u_t       = sqrt(E[dx^2]_{t-1} + eps) / sqrt(E[g^2]_t + eps) * g_t
    E[dx^2]_t = rho * E[dx^2]_{t-1} + (1 - rho) * u_t^2

    Args:
      rho: in [0, 1), averaging rate of both averages.  eps: >= 0, inside both roots.

    Hyperparameters: rho (``Decay``), eps.
    """
    _validate.unit_interval("scale_by_adadelta", rho=rho)
    _validate.nonnegative("scale_by_adadelta", eps=eps)

    def init(params):
        return ScaleByAdaDeltaState(e_g=zeros_like(params), e_x=zeros_like(params))

    def update(h, updates, state, params=None):
        del params
        rho, eps = h["rho"], h["eps"]
        e_g = jax.tree.map(lambda g, e: ema(g ** 2, e, rho), updates, state.e_g)
        updates = jax.tree.map(lambda g, eg, ex: (jnp.sqrt(ex + eps) / jnp.sqrt(eg + eps)) * g,
                               updates, e_g, state.e_x)
        e_x = jax.tree.map(lambda u, e: ema(u ** 2, e, rho), updates, state.e_x)
        return updates, ScaleByAdaDeltaState(e_g=e_g, e_x=e_x)

    return GradientTransformation(init, HyperparamFunction(update, dict(rho=decay_of(rho),
                                                                        eps=eps)))


def adadelta(learning_rate: Optional[Any] = None, rho=0.9, eps=1e-6, weight_decay=0.0,
             weight_decay_mask=None):
    """Adadelta (Zeiler, 2012): p_t = p_{t-1} - lr * u_t with u_t from ``scale_by_adadelta``
    applied to g_t + weight_decay * p_{t-1}.

    Args:
      learning_rate: lr >= 0 or a schedule; None means 1 (the paper has no learning rate).
      rho: in [0, 1), averaging rate.
      eps: >= 0, inside both roots.
      weight_decay: >= 0, L2 coefficient added to the gradient before the scaling.
      weight_decay_mask: pytree of bools (or a function params -> such a tree) choosing
        the parameters that are decayed.

    Differs from: nothing in torch.optim.Adadelta (lr=1.0, eps=1e-6, L2 weight_decay).
    """
    _validate.unit_interval("adadelta", rho=rho)
    _validate.nonnegative("adadelta", learning_rate=learning_rate, eps=eps,
                          weight_decay=weight_decay)
    return chain(add_decayed_weights(weight_decay, mask=weight_decay_mask),
                 scale_by_adadelta(rho=rho, eps=eps),
                 scale_by_learning_rate(learning_rate))
