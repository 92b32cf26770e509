"""One test per row of the README's fnn-versus-torch.optim table: how fnn (= optax) relates to torch.optim.

PyTorch is not a test dependency, so each torch rule is written out in NumPy from its
documented algorithm (torch.optim docs, 2.x). Each test shows that fnn either matches the
torch rule (with the flags the table names) or differs from it by the amount the table
states; that fnn matches optax in every configuration used here is test_optim_equivalence's.
Everything runs in float64.
"""
import jax.numpy as jnp
import numpy as np
import pytest

import fnn.optim as fo

P0 = np.array([1.0, -2.0, 0.5])
GRADS = np.array([[0.3, -1.2, 0.8], [-0.5, 0.4, 1.5], [0.9, 0.1, -0.7], [0.2, -0.3, 0.05]])


@pytest.fixture(autouse=True)
def float64(x64):
    """All tests here run with 64-bit floats."""


def fnn_steps(make, grads=GRADS, p0=P0):
    """Params after each step of ``make(fnn.optim)`` from ``p0`` on ``grads``."""
    optimizer, params = make(fo), jnp.asarray(p0)
    state, trajectory = optimizer.init(params), []
    for g in grads:
        updates, state = optimizer.update(jnp.asarray(g), state, params)
        params = fo.apply_updates(params, updates)
        trajectory.append(np.asarray(params))
    return np.stack(trajectory)


# ---- torch.optim rules, written out from the documentation -------------------------------

def torch_sgd(lr, momentum=0.0, nesterov=False, weight_decay=0.0, grads=GRADS, p=P0):
    buf, out = None, []
    for g in grads:
        g = g + weight_decay * p
        if momentum:
            buf = g if buf is None else momentum * buf + g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
        out.append(p)
    return np.stack(out)


def torch_adam(lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False,
               decoupled=False, grads=GRADS, p=P0):
    """torch.optim.Adam (decoupled=False: L2 weight decay) or AdamW (decoupled=True)."""
    m = v = v_max = np.zeros_like(p)
    out = []
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        if amsgrad:
            v_max = np.maximum(v_max, v)  # maximum of the raw v, corrected afterwards
            denom = np.sqrt(v_max) / np.sqrt(1 - b2 ** t) + eps
        else:
            denom = np.sqrt(v) / np.sqrt(1 - b2 ** t) + eps
        p = p - lr / (1 - b1 ** t) * m / denom
        out.append(p)
    return np.stack(out)


def torch_nadam(lr, b1=0.9, b2=0.999, eps=1e-8, momentum_decay=4e-3, grads=GRADS, p=P0):
    m = v = np.zeros_like(p)
    mu_product, out = 1.0, []
    for t, g in enumerate(grads, start=1):
        mu = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        mu_product *= mu
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        denom = np.sqrt(v / (1 - b2 ** t)) + eps
        p = (p - lr * (1 - mu) / (1 - mu_product) * g / denom
             - lr * mu_next / (1 - mu_product * mu_next) * m / denom)
        out.append(p)
    return np.stack(out)


def torch_rmsprop(lr, alpha=0.99, eps=1e-8, momentum=0.0, centered=False, grads=GRADS, p=P0):
    """lr: a number, or one learning rate per step."""
    v, g_avg, buf, out = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p), []
    for t, g in enumerate(grads):
        lr_t = lr[t] if np.ndim(lr) else lr
        v = alpha * v + (1 - alpha) * g ** 2
        if centered:
            g_avg = alpha * g_avg + (1 - alpha) * g
            denom = np.sqrt(v - g_avg ** 2) + eps
        else:
            denom = np.sqrt(v) + eps
        if momentum:
            buf = momentum * buf + g / denom
            p = p - lr_t * buf
        else:
            p = p - lr_t * g / denom
        out.append(p)
    return np.stack(out)


def torch_adagrad(lr, lr_decay=0.0, initial_accumulator_value=0.0, eps=1e-10, grads=GRADS,
                  p=P0):
    s, out = np.full_like(p, initial_accumulator_value), []
    for t, g in enumerate(grads, start=1):
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g ** 2
        p = p - clr * g / (np.sqrt(s) + eps)
        out.append(p)
    return np.stack(out)


def torch_adadelta(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, grads=GRADS, p=P0):
    v, u, out = np.zeros_like(p), np.zeros_like(p), []
    for g in grads:
        g = g + weight_decay * p
        v = rho * v + (1 - rho) * g ** 2
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta ** 2
        p = p - lr * delta
        out.append(p)
    return np.stack(out)


def torch_adamax(lr, b1=0.9, b2=0.999, eps=1e-8, grads=GRADS, p=P0):
    m, u, out = np.zeros_like(p), np.zeros_like(p), []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g) + eps)
        p = p - lr / (1 - b1 ** t) * m / u
        out.append(p)
    return np.stack(out)


def torch_clip_grad_norm(g, max_norm):
    norm = np.sqrt(np.sum(g ** 2))
    return g * min(max_norm / (norm + 1e-6), 1.0)


# ---- one test per table row --------------------------------------------------------------

@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_matches_torch(nesterov):
    ours = fnn_steps(lambda m: m.sgd(0.1, momentum=0.9, nesterov=nesterov))
    np.testing.assert_allclose(ours, torch_sgd(0.1, 0.9, nesterov), rtol=1e-13)


def test_sgd_weight_decay_is_l2_in_torch():
    ours = fnn_steps(lambda m: m.chain(m.add_decayed_weights(0.01), m.sgd(0.1, momentum=0.9)))
    np.testing.assert_allclose(ours, torch_sgd(0.1, 0.9, weight_decay=0.01), rtol=1e-13)
    plain = fnn_steps(lambda m: m.sgd(0.1, momentum=0.9))
    # Without the chain the first step lacks exactly lr * wd * p0.
    np.testing.assert_allclose(plain[0] - ours[0], 0.1 * 0.01 * P0, rtol=1e-12)


def test_adam_matches_torch():
    ours = fnn_steps(lambda m: m.adam(0.01))
    np.testing.assert_allclose(ours, torch_adam(0.01), rtol=1e-13)


def test_torch_adam_weight_decay_is_l2_not_adamw():
    coupled = fnn_steps(lambda m: m.chain(m.add_decayed_weights(0.1), m.adam(0.01)))
    np.testing.assert_allclose(coupled, torch_adam(0.01, weight_decay=0.1), rtol=1e-13)
    # On a first step with |g| >> eps, Adam normalises g + wd p to about +-1, so the L2 term
    # only matters through its sign; AdamW instead adds lr * wd * p0 outright.
    grads, p0 = np.array([[0.5]]), np.array([1.0])
    decoupled = fnn_steps(lambda m: m.adamw(0.1, weight_decay=0.1), grads, p0)
    l2 = torch_adam(0.1, weight_decay=0.1, grads=grads, p=p0)
    np.testing.assert_allclose(l2[0] - decoupled[0], 0.1 * 0.1 * p0, rtol=1e-6)


def test_adamw_matches_torch_adamw_given_its_weight_decay():
    ours = fnn_steps(lambda m: m.adamw(0.01, weight_decay=0.01))  # torch's default 1e-2
    np.testing.assert_allclose(ours, torch_adam(0.01, weight_decay=0.01, decoupled=True),
                               rtol=1e-13)
    default = fnn_steps(lambda m: m.adamw(0.01))  # optax's default 1e-4
    assert not np.allclose(default, ours, rtol=1e-6)


def test_nadam_differs_from_torch_nadam():
    grads, p0 = np.array([[1.0]]), np.array([0.0])
    ours = fnn_steps(lambda m: m.nadam(2e-3), grads, p0)
    # fnn's first step: m_hat = b1 (1 - b1) g / (1 - b1^2) + g = (1 + b1 / (1 + b1)) g.
    np.testing.assert_allclose(ours[0], -2e-3 * (1 + 0.9 / 1.9), rtol=1e-7)
    # torch's first step: (1 - mu_1) g / (1 - mu_1) + mu_2 (1 - b1) g / (1 - mu_1 mu_2).
    mu_1, mu_2 = (0.9 * (1 - 0.5 * 0.96 ** (t * 4e-3)) for t in (1, 2))
    theirs = torch_nadam(2e-3, grads=grads, p=p0)
    np.testing.assert_allclose(theirs[0], -2e-3 * (1 + mu_2 * 0.1 / (1 - mu_1 * mu_2)),
                               rtol=1e-7)
    assert abs(ours[0] - theirs[0])[0] > 0.8e-3  # about 40% of the step


def test_amsgrad_maximum_before_vs_after_bias_correction():
    # While the bias-corrected v grows, the two AMSGrad variants agree ...
    ours = fnn_steps(lambda m: m.amsgrad(0.01), GRADS[:1])
    np.testing.assert_allclose(ours, torch_adam(0.01, amsgrad=True, grads=GRADS[:1]),
                               rtol=1e-13)
    # ... after a gradient g then 0, torch's second step is sqrt(1 + b2) times fnn's: fnn
    # keeps max(v_hat) = g^2, torch keeps max(v) = (1 - b2) g^2 and divides by 1 - b2^2.
    grads, p0 = np.array([[1.0], [0.0]]), np.array([0.0])
    ours = fnn_steps(lambda m: m.amsgrad(0.01), grads, p0)
    theirs = torch_adam(0.01, amsgrad=True, grads=grads, p=p0)
    ratio = (theirs[1] - theirs[0]) / (ours[1] - ours[0])
    np.testing.assert_allclose(ratio, np.sqrt(1 + 0.999), rtol=1e-6)


def test_adamax_matches_torch():
    ours = fnn_steps(lambda m: m.adamax(2e-3))
    np.testing.assert_allclose(ours, torch_adamax(2e-3), rtol=1e-13)


def test_rmsprop_defaults_differ_from_torch():
    grads, p0 = np.array([[1.0]]), np.array([0.0])
    ours = fnn_steps(lambda m: m.rmsprop(0.01), grads, p0)
    theirs = torch_rmsprop(0.01, grads=grads, p=p0)
    # First step on g = 1: fnn -lr / sqrt(0.1 + eps), torch -lr / (sqrt(0.01) + eps).
    np.testing.assert_allclose(ours[0], -0.01 / np.sqrt(0.1 + 1e-8), rtol=1e-13)
    np.testing.assert_allclose(theirs[0], -0.01 / (0.1 + 1e-8), rtol=1e-13)


@pytest.mark.parametrize("centered, momentum", [(False, 0.0), (True, 0.0), (True, 0.9),
                                                (False, 0.9)])
def test_rmsprop_with_torch_flags_matches_torch(centered, momentum):
    ours = fnn_steps(lambda m: m.rmsprop(0.01, decay=0.99, eps_in_sqrt=False, centered=centered,
                                         momentum=momentum or None))
    theirs = torch_rmsprop(0.01, centered=centered, momentum=momentum)
    np.testing.assert_allclose(ours, theirs, rtol=1e-13)


def test_rmsprop_momentum_buffer_holds_lr_scaled_steps():
    """fnn's momentum buffer sums lr-scaled steps (b = -lr d + mu b); torch's sums raw ones and
    multiplies by the current lr (p -= lr (mu B + d)). Equal for a constant lr; when lr drops
    from 0.01 to 0.001 at step 3, fnn still carries mu * (step 2) at the old rate."""
    schedule = lambda m: m.piecewise_constant_schedule(0.01, {2: 0.1})
    ours = fnn_steps(lambda m: m.rmsprop(schedule(m), decay=0.99, eps_in_sqrt=False,
                                         momentum=0.9))
    theirs = torch_rmsprop([0.01, 0.01, 0.001, 0.001], momentum=0.9)
    np.testing.assert_allclose(ours[:2], theirs[:2], rtol=1e-13)
    step_2 = ours[1] - ours[0]
    gap_3 = (ours[2] - ours[1]) - (theirs[2] - theirs[1])
    np.testing.assert_allclose(gap_3, 0.9 * step_2 * (1 - 0.001 / 0.01), rtol=1e-10)


def test_adagrad_defaults_differ_from_torch():
    grads, p0 = np.array([[1.0]]), np.array([0.0])
    ours = fnn_steps(lambda m: m.adagrad(0.1), grads, p0)
    theirs = torch_adagrad(0.1, grads=grads, p=p0)
    # First step on g = 1: fnn -lr / sqrt(0.1 + 1 + 1e-7), torch -lr / (1 + 1e-10).
    np.testing.assert_allclose(ours[0], -0.1 / np.sqrt(1.1 + 1e-7), rtol=1e-13)
    np.testing.assert_allclose(theirs[0], -0.1 / (1 + 1e-10), rtol=1e-13)


def test_adagrad_with_torch_flags_and_lr_decay():
    ours = fnn_steps(lambda m: m.adagrad(0.1, initial_accumulator_value=0.0, eps=0.0))
    np.testing.assert_allclose(ours, torch_adagrad(0.1), rtol=1e-9)  # eps 1e-10 outside root
    decayed = fo.adagrad(fo.inverse_time_decay(0.1, 0.5), initial_accumulator_value=0.0, eps=0.0)
    params, state, trajectory = jnp.asarray(P0), None, []
    state = decayed.init(params)
    for g in GRADS:
        updates, state = decayed.update(jnp.asarray(g), state, params)
        params = fo.apply_updates(params, updates)
        trajectory.append(np.asarray(params))
    np.testing.assert_allclose(np.stack(trajectory), torch_adagrad(0.1, lr_decay=0.5), rtol=1e-9)


def test_adadelta_matches_torch():
    ours = fnn_steps(lambda m: m.adadelta(1.0, weight_decay=0.01))
    np.testing.assert_allclose(ours, torch_adadelta(weight_decay=0.01), rtol=1e-13)


def test_clip_by_global_norm_vs_torch_clip_grad_norm():
    g = GRADS[2]
    norm = np.sqrt(np.sum(g ** 2))
    transform = fo.clip_by_global_norm(0.5)
    ours = np.asarray(transform.update(jnp.asarray(g), transform.init(None))[0])
    np.testing.assert_allclose(ours, g * 0.5 / norm, rtol=1e-15)        # g c / n, as n >= c
    theirs = torch_clip_grad_norm(g, 0.5)
    np.testing.assert_allclose(ours / theirs, (norm + 1e-6) / norm, rtol=1e-12)
