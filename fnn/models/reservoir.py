"""Echo state networks (Jaeger 2001): a fixed random recurrent reservoir and a linear readout
fitted in closed form by ridge regression. No gradient training anywhere.

    esn = fnn.EchoStateNetwork(units=500, spectral_radius=0.9, leak_rate=0.3)
    reservoir = esn.init_reservoir(jax.random.key(0), 1)         # {'w_in', 'w', 'b'}, fixed
    readout = esn.fit(reservoir, u_train, y_train, ridge=1e-6)    # {'w', 'b'}, closed form
    y = esn.predict(reservoir, readout, u_test)                   # teacher-forced, one step ahead
    y = esn.generate(reservoir, readout, u_warmup, steps=84)      # free-running (closed loop)

Reservoir update (leaky-integrator tanh units; Jaeger et al. 2007, Lukosevicius 2012):

    x_t = (1 - a) x_{t-1} + a tanh(u_t W_in + x_{t-1} W + b),   x_0 = 0
    y_t = [1, u_t, x_t] W_out     (the readout: ``readout['b']`` + [u_t, x_t] ``readout['w']``)

with ``a`` the leak rate. ``W`` is sparse (each entry nonzero with probability
``connectivity``, values U(-1, 1); the notes: "very sparse, about 1% connectivity") and then
rescaled so that its largest absolute eigenvalue is ``spectral_radius`` (< 1 is the usual
recipe for the echo state property: the state forgets its initial condition). It is stored
dense, since a (units, units) matmul is the fastest thing on every backend at these sizes.
``W_in`` ~ U(-input_scaling, input_scaling), ``b`` ~ U(-bias_scaling, bias_scaling).

Sequences are ``(time, features)`` or batched ``(batch, time, features)``; every time loop is
one ``lax.scan``. ``init`` runs on the host (NumPy computes the eigenvalues), the rest jits.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fnn.initializers import draw
from fnn.validation import nonnegative_int, number, positive_int

__all__ = ["EchoStateNetwork", "nrmse"]


def nrmse(prediction, target, axis=None):
    """Normalised root-mean-square error: sqrt(mean((prediction - target)^2) / var(target)).
    1.0 is the error of always predicting the target's mean; 0 is perfect."""
    prediction, target = np.asarray(prediction, np.float64), np.asarray(target, np.float64)
    if prediction.shape != target.shape:
        raise ValueError(f"nrmse: prediction and target must have the same shape, got "
                         f"{prediction.shape} and {target.shape}")
    return np.sqrt(np.mean((prediction - target) ** 2, axis=axis) / np.var(target))


@dataclasses.dataclass(frozen=True)
class EchoStateNetwork:
    """An echo state network's hyperparameters; the arrays live in the dicts its methods return.

    Args:
      units: reservoir size N (e.g. 500-1000).
      connectivity: fraction of nonzero recurrent weights, in (0, 1] (default 0.01: 1%).
      spectral_radius: largest |eigenvalue| of W after rescaling, > 0 (default 0.9).
      input_scaling: W_in ~ U(-input_scaling, input_scaling), > 0.
      leak_rate: a in (0, 1]; 1 = no leak (plain tanh units), small = slow dynamics.
      bias_scaling: b ~ U(-bias_scaling, bias_scaling), >= 0 (0: no bias).
      washout: the first ``washout`` states of every sequence are left out of the fit (the
        transient from x_0 = 0), an int >= 0.
      dtype: parameter and state dtype.

    Shapes: reservoir ``{'w_in': (F, N), 'w': (N, N), 'b': (N,)}``; readout
    ``{'w': (F + N, O), 'b': (O,)}`` for F input and O output features.
    """

    units: int = 500
    connectivity: float = 0.01
    spectral_radius: float = 0.9
    input_scaling: float = 1.0
    leak_rate: float = 1.0
    bias_scaling: float = 0.0
    washout: int = 100
    dtype: type = jnp.float32

    def __post_init__(self):
        name = "EchoStateNetwork"
        positive_int(name, "units", self.units)
        number(name, "connectivity (the fraction of nonzero recurrent weights)",
               self.connectivity, low=0, low_open=True, high=1)
        number(name, "spectral_radius", self.spectral_radius, low=0, low_open=True)
        number(name, "input_scaling", self.input_scaling, low=0, low_open=True)
        number(name, "leak_rate", self.leak_rate, low=0, low_open=True, high=1)
        number(name, "bias_scaling", self.bias_scaling, low=0)
        nonnegative_int(name, "washout", self.washout)

    # ------------------------------------------------------------------ reservoir
    def init_reservoir(self, key: jax.Array, in_features: int) -> dict:
        """The fixed reservoir ``{'w_in': (F, N), 'w': (N, N), 'b': (N,)}`` (not a layer's
        ``init``: the reservoir is drawn once and never trained).

        W: entries nonzero with probability ``connectivity`` (at least one), values U(-1, 1),
        then W *= spectral_radius / max|eig(W)| (eigenvalues in float64 on the host).
        Raises ValueError if W comes out nilpotent (spectral radius 0: too few connections).
        """
        positive_int("EchoStateNetwork", "in_features", in_features)
        n = self.units
        k_in, k_w, k_mask, k_b = jax.random.split(key, 4)
        uniform = functools.partial(draw, jax.random.uniform)   # flat draws: cheap to compile
        w_in = uniform(k_in, (in_features, n), jnp.float32, -self.input_scaling,
                       self.input_scaling)
        values = np.asarray(uniform(k_w, (n, n), jnp.float32, -1.0, 1.0), np.float64)
        mask = np.asarray(uniform(k_mask, (n, n), jnp.float32)) < self.connectivity
        w = np.where(mask, values, 0.0)
        radius = float(np.max(np.abs(np.linalg.eigvals(w)))) if mask.any() else 0.0
        if not radius > 1e-8:
            raise ValueError(f"EchoStateNetwork: the random recurrent matrix has spectral radius "
                             f"{radius:.1e} (nilpotent: {int(mask.sum())} connections among "
                             f"{n} units), so it cannot be rescaled to {self.spectral_radius}; "
                             f"raise connectivity (={self.connectivity}) or units")
        w = w * (self.spectral_radius / radius)
        b = jax.random.uniform(k_b, (n,), jnp.float32, -self.bias_scaling, self.bias_scaling)
        return {"w_in": w_in.astype(self.dtype), "w": jnp.asarray(w, self.dtype),
                "b": b.astype(self.dtype)}

    def _check(self, who, reservoir, inputs, what="inputs"):
        f = reservoir["w_in"].shape[0]
        if inputs.ndim not in (2, 3) or inputs.shape[-1] != f:
            raise ValueError(f"EchoStateNetwork.{who}: expected {what} of shape (time, {f}) or "
                             f"(batch, time, {f}), got {tuple(inputs.shape)}")

    def _update(self, reservoir, x, u):
        """One leaky tanh step: x (B, N), u (B, F) -> x' (B, N)."""
        pre = u @ reservoir["w_in"] + x @ reservoir["w"] + reservoir["b"][None]
        return (1 - self.leak_rate) * x + self.leak_rate * jnp.tanh(pre)

    @functools.partial(jax.jit, static_argnums=0)
    def _scan(self, reservoir, inputs, x0):
        """inputs (B, T, F), x0 (B, N) -> (x_T (B, N), states (B, T, N))."""
        def body(x, u):
            x = self._update(reservoir, x, u)
            return x, x
        x, xs = lax.scan(body, x0, jnp.swapaxes(inputs, 0, 1))
        return x, jnp.swapaxes(xs, 0, 1)

    def states(self, reservoir: dict, inputs, initial=None):
        """Teacher-forced reservoir states x_1..x_T for inputs u_1..u_T.

        Shapes: inputs (T, F) or (B, T, F) -> states (T, N) or (B, T, N); ``initial``
        (N,) or (B, N), default zeros.
        """
        inputs = jnp.asarray(inputs, self.dtype)
        self._check("states", reservoir, inputs)
        batched = inputs.ndim == 3
        u = inputs if batched else inputs[None]
        x0 = (jnp.zeros((u.shape[0], self.units), self.dtype) if initial is None
              else jnp.asarray(initial, self.dtype).reshape(u.shape[0], self.units))
        _, xs = self._scan(reservoir, u, x0)
        return xs if batched else xs[0]

    # ------------------------------------------------------------------ readout
    @staticmethod
    def _features(u, x):
        return jnp.concatenate([u, x], axis=-1)

    def fit(self, reservoir: dict, inputs, targets, *, ridge: float = 1e-6) -> dict:
        """Ridge regression of the targets on [1, u_t, x_t] over every step after the washout:

            Z = [1, U, X] (M, 1 + F + N),  W_out = (Z^T Z + ridge I)^-1 Z^T Y   (jnp.linalg.solve)

        (the bias is regularised too). The states are computed in ``dtype``; the normal
        equations are formed and solved in float64 (x64 is switched on for the solve: in
        float32 squaring the condition number of Z loses the readout), so ``fit`` runs
        eagerly, not under an outer ``jit``. Shapes: inputs (T, F) or (B, T, F); targets (T, O) or
        (B, T, O), aligned with the inputs (for one-step-ahead forecasting, targets[t] =
        u[t + 1]). Returns the readout ``{'w': (F + N, O), 'b': (O,)}``.
        """
        number("EchoStateNetwork.fit", "ridge", ridge, low=0)
        inputs, targets = jnp.asarray(inputs, self.dtype), jnp.asarray(targets, self.dtype)
        self._check("fit", reservoir, inputs)
        if targets.ndim != inputs.ndim or targets.shape[:-1] != inputs.shape[:-1]:
            raise ValueError(f"EchoStateNetwork.fit: targets must have the inputs' leading "
                             f"(batch, time) axes {tuple(inputs.shape[:-1])} and a feature "
                             f"axis, got {tuple(targets.shape)}")
        if inputs.shape[-2] <= self.washout:
            raise ValueError(f"EchoStateNetwork.fit: sequences of {inputs.shape[-2]} steps leave "
                             f"nothing after the washout of {self.washout} steps")
        z = self._design(reservoir, inputs)
        y = targets[..., self.washout:, :].reshape(-1, targets.shape[-1])
        with jax.enable_x64(True):  # the normal equations square the condition number
            w = self._solve(jnp.asarray(z, jnp.float64), jnp.asarray(y, jnp.float64),
                            jnp.asarray(ridge, jnp.float64))
            w = np.asarray(w)
        return {"w": jnp.asarray(w[1:], self.dtype), "b": jnp.asarray(w[0], self.dtype)}

    @functools.partial(jax.jit, static_argnums=0)
    def _design(self, reservoir, inputs):
        """[1, u_t, x_t] for every step after the washout: (M, 1 + F + N)."""
        z = self._features(inputs, self.states(reservoir, inputs))[..., self.washout:, :]
        z = z.reshape(-1, z.shape[-1])
        return jnp.concatenate([jnp.ones((z.shape[0], 1), z.dtype), z], axis=1)

    @staticmethod
    @jax.jit
    def _solve(z, y, ridge):
        gram = z.T @ z + ridge * jnp.eye(z.shape[1], dtype=z.dtype)
        return jnp.linalg.solve(gram, z.T @ y)

    def _readout(self, readout, u, x):
        y = self._features(u, x) @ readout["w"]
        return y + jnp.expand_dims(readout["b"], tuple(range(y.ndim - 1)))

    def predict(self, reservoir: dict, readout: dict, inputs, initial=None):
        """Teacher-forced outputs y_t = [1, u_t, x_t] W_out for every step (washout included:
        slice it off when scoring). Shapes: inputs (T, F) or (B, T, F) -> (T, O) or (B, T, O).
        """
        inputs = jnp.asarray(inputs, self.dtype)
        xs = self.states(reservoir, inputs, initial)
        return self._readout(readout, inputs, xs)

    def generate(self, reservoir: dict, readout: dict, inputs, steps: int):
        """Free-running (closed-loop) generation after a teacher-forced warm-up:

            run the reservoir over inputs u_1..u_T (the known past), then for k = 1..steps
            y_k = [1, u, x] W_out,  u <- y_k,  x <- update(x, u)       (one lax.scan)

        so y_1 is the one-step forecast of u_{T+1}, y_2 uses y_1 as its input, and so on.
        Needs O == F (the output is fed back as the input). Shapes: inputs (T, F) or
        (B, T, F) -> (steps, F) or (B, steps, F).
        """
        positive_int("EchoStateNetwork.generate", "steps", steps)
        inputs = jnp.asarray(inputs, self.dtype)
        self._check("generate", reservoir, inputs)
        if readout["w"].shape[1] != inputs.shape[-1]:
            raise ValueError(f"EchoStateNetwork.generate: the readout has "
                             f"{readout['w'].shape[1]} outputs but the reservoir takes "
                             f"{inputs.shape[-1]} inputs; closed-loop generation feeds the "
                             f"output back, so they must be equal")
        batched = inputs.ndim == 3
        u = inputs if batched else inputs[None]
        ys = self._generate(reservoir, readout, u, int(steps))
        return ys if batched else ys[0]

    @functools.partial(jax.jit, static_argnums=(0, 4))
    def _generate(self, reservoir, readout, u, steps):
        x0 = jnp.zeros((u.shape[0], self.units), self.dtype)
        x, _ = self._scan(reservoir, u, x0)

        def body(carry, _):
            x, u_t = carry
            y = self._readout(readout, u_t, x)
            return (self._update(reservoir, x, y), y), y

        _, ys = lax.scan(body, (x, u[:, -1]), None, length=steps)
        return jnp.swapaxes(ys, 0, 1)
