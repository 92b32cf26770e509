"""Training a GAN (:class:`fnn.models.GAN`, used through its methods: train never imports
models): its two-tree step (:func:`gan_step`) and
:func:`fit_gan`, a thin face over ``fnn.fit`` that keeps every step's metrics and fixed-noise
samples (a hook reading the train state)."""
from __future__ import annotations

import time
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fnn.train.fit import fit
from fnn.train.multi_step import multi_step
from fnn.train.programs import PROGRAMS, fingerprint, identity, remembered, spec
from fnn.train.step import TrainState
from fnn.validation import integer, nonnegative_int, one_of, positive_int

__all__ = ["gan_step", "fit_gan", "GANRun"]

_STEPS: dict = {}   # gan_step's steps by (gan, optimizers, order): one program per GAN


def gan_step(gan, d_optimizer, g_optimizer, *, order: str = "sequential") -> Callable:
    """The pure step ``(trees, opt_states, x, key, state=None) -> (trees, opt_states,
    metrics)`` (plus the new state last when ``state`` is given, as for BatchNorm networks):
    :func:`fnn.train.multi_step` over ``gan.objectives()``: one discriminator update, then
    (``order='sequential'``) one generator update against the updated discriminator.
    ``step.init(trees)`` gives the optimizer states; ``fnn.fit(step, trees, None, x, ...)``
    trains it. Metrics: ``discriminator_loss``, ``generator_loss``, ``discriminator_d_real``,
    ``discriminator_d_fake``. The same arguments give the same step object (so ``fit``
    compiles its program once)."""
    if not callable(getattr(gan, "objectives", None)):
        raise TypeError(f"gan_step: gan must be an fnn.models.GAN (with objectives()), got "
                        f"{type(gan).__name__}")
    one_of("gan_step", "order", order, ("sequential", "simultaneous"))
    key = (identity(gan), identity(d_optimizer), identity(g_optimizer), order)
    if key not in _STEPS:
        _STEPS[key] = multi_step(gan.objectives(), {"discriminator": d_optimizer,
                                                    "generator": g_optimizer}, order=order)
    return _STEPS[key]


class GANRun(NamedTuple):
    """What :func:`fit_gan` returns: the trees and optimizer states, per-step ``history``
    (``{metric: (steps,)}``), the fixed-noise ``snapshots`` ``{epoch: (n, *data_shape)}``,
    the training seconds and the networks' final ``state`` (BatchNorm statistics; ``{}``
    without)."""
    trees: dict
    opt_states: dict
    history: dict
    snapshots: dict
    seconds: float
    state: dict


def snapshot_hook(gan, fixed_z, epochs: Sequence[int], snapshots: dict) -> Callable:
    """A fit callback ``f(epoch, metrics, state)`` that stores G(fixed_z) (evaluation mode)
    in ``snapshots[epoch + 1]`` after each epoch ``epoch + 1`` in ``epochs``."""
    def sample(ts):
        args = (ts.params["generator"], fixed_z, ts.model_state.get("generator"))
        key = remembered(("gan_sample", identity(gan), spec(args)),
                         lambda: ("gan_sample", fingerprint(gan.generate, *args)))
        return np.asarray(PROGRAMS.get(key, lambda: jax.jit(gan.generate))(*args))

    def hook(epoch, metrics, state):
        if epoch + 1 in epochs:
            snapshots[epoch + 1] = sample(state)

    hook.sample = sample
    return hook


def fit_gan(gan, trees, d_optimizer, g_optimizer, data, *, epochs: int, batch_size: int,
            seed: int = 0, snapshot_epochs: Sequence[int] = (), num_snapshot: int = 64,
            order: str = "sequential", model_state=None, **fit_options) -> GANRun:
    """Train a GAN on ``data`` (n, *data_shape) for ``epochs`` shuffled passes (last partial
    batch dropped): ``fnn.fit(gan_step(gan, d_optimizer, g_optimizer, order=order), trees,
    None, data, step_metrics=True, progress=False, ...)``, so step t uses key
    ``fold_in(fold_in(key(seed), 1), t)`` and epoch e's shuffle ``fold_in(fold_in(key(seed),
    0), e)``: a run is a function of its seed. ``model_state`` is the networks' state (e.g.
    BatchNorm statistics), threaded through every step. G's samples for ``num_snapshot``
    fixed noise vectors (drawn from ``fold_in(key(seed), 2)``) are kept after each epoch in
    ``snapshot_epochs`` (epoch 0: before training), by a hook reading the train state.
    ``fit_options`` go to ``fnn.fit`` (``checkpoint_dir``, ``resume``, ``on_nonfinite``,
    ``mesh``, ``precision``, ``progress``, ``callbacks``, ...)."""
    data = jnp.asarray(data)   # arrays in memory (a list would read as a stream of batches)
    n = data.shape[0]
    batch_size = integer("fit_gan", "batch_size", batch_size, low=1, high=n)
    epochs = positive_int("fit_gan", "epochs", epochs)
    base = jax.random.key(nonnegative_int("fit_gan", "seed", seed))
    fixed_z = gan.noise(jax.random.fold_in(base, 2), num_snapshot)
    snapshots: dict = {}
    hook = snapshot_hook(gan, fixed_z, tuple(snapshot_epochs), snapshots)
    if 0 in snapshot_epochs:
        snapshots[0] = hook.sample(TrainState(trees, model_state or {}, None, None))
    options = {"progress": False, **fit_options}
    extra = options.get("callbacks", ())
    options["callbacks"] = (hook, *((extra,) if callable(extra) else tuple(extra)))
    start = time.perf_counter()
    result = fit(gan_step(gan, d_optimizer, g_optimizer, order=order), trees, None, data,
                 model_state=model_state, epochs=epochs, batch_size=int(batch_size),
                 seed=seed, step_metrics=True, **options)
    seconds = time.perf_counter() - start
    history = {k: v.reshape(-1) for k, v in result.history.items()}
    return GANRun(result.params, result.opt_state, history, snapshots, seconds,
                  result.model_state)
