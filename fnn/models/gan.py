"""Generative adversarial networks (Goodfellow et al. 2014): a generator G(z) and a
discriminator D(x) (logits), the standard discriminator loss and the non-saturating generator
loss, trained by one jitted step over both parameter trees (:func:`fnn.train.multi_step`)."""
from __future__ import annotations

import dataclasses
import functools
import time
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fnn import activations
from fnn.core import ApplyContext, Layer, as_layer, composite, require_key, serial
from fnn.layers.dense import Dense
from fnn.models.upsampling import conv_decoder
from fnn.train import multi_step
from fnn.train.engine import EpochLoop, compiled_epochs, epoch_keys
from fnn.train.programs import (PROGRAMS, fingerprint, hyperparameters, identity,
                                 remembered, spec, with_hyperparameters)
from fnn.train.step import TrainState
from fnn.validation import integer, nonnegative_int, one_of, positive_int

__all__ = ["GAN", "discriminator_loss", "generator_loss", "dense_generator", "conv_generator",
           "dense_discriminator", "fit_gan", "GANRun"]


def discriminator_loss(real_logits, fake_logits):
    """The standard discriminator loss, binary cross-entropy with real = 1 and fake = 0:

        L_D = -mean log sigmoid(D(x)) - mean log(1 - sigmoid(D(G(z))))
            = mean softplus(-D(x)) + mean softplus(D(G(z)))

    Shapes: logits (batch, 1) or (batch,) -> scalar.
    """
    return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


def generator_loss(fake_logits):
    """The non-saturating generator loss (Goodfellow et al. 2014, sec. 3):

        L_G = -mean log sigmoid(D(G(z))) = mean softplus(-D(G(z)))

    (instead of minimising log(1 - sigmoid(D(G(z)))), whose gradient vanishes when D wins).
    """
    return jnp.mean(jax.nn.softplus(-fake_logits))


@dataclasses.dataclass(frozen=True)
class GAN:
    """A generator (latent_dim -> data shape) and a discriminator (data shape -> 1 logit).

    ``network`` is the two as one composite layer z -> D(G(z)) with children ``generator``
    and ``discriminator``: its params and state are the GAN's trees ``{'generator': ...,
    'discriminator': ...}``, and the objectives apply both through it, in the step's train
    mode (Dropout active, BatchNorm batch statistics and running averages), state threaded.
    """
    generator: Layer
    discriminator: Layer
    latent_dim: int
    network: Layer = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):
        g = as_layer(self.generator, "GAN", "generator")
        d = as_layer(self.discriminator, "GAN", "discriminator")
        object.__setattr__(self, "generator", g)
        object.__setattr__(self, "discriminator", d)
        object.__setattr__(self, "latent_dim", positive_int("GAN", "latent_dim", self.latent_dim))

        def init(c, z_shape):
            logits = c("discriminator", c("generator", z_shape))
            if logits not in ((1,), ()):
                raise ValueError(f"GAN: the discriminator must output one logit per example, "
                                 f"got shape {logits}")
            return logits

        def apply(c, z):
            return c("discriminator", c("generator", z))

        object.__setattr__(self, "network", composite(
            "gan", {"generator": g, "discriminator": d}, init, apply))

    def init(self, key, data_shape):
        """``(trees, state)`` for data of ``data_shape``: both parameter trees (G from the first
        of ``split(key, 2)``, D from the second) and their state (empty without BatchNorm).
        Checks that G's output shape is ``data_shape`` and D outputs one logit."""
        shape = tuple(data_shape) if not isinstance(data_shape, int) else (data_shape,)
        g_out = self.generator.output_shape((self.latent_dim,))
        if g_out != shape:
            raise ValueError(f"GAN: the generator maps ({self.latent_dim},) to {g_out}, but the "
                             f"data have shape {shape}")
        return self.network.init(key, (self.latent_dim,))

    def noise(self, key, n: int):
        """z ~ N(0, I): (n, latent_dim)."""
        require_key("GAN", key, "drawing z ~ N(0, I)")
        return jax.random.normal(key, (n, self.latent_dim), jnp.float32)

    def generate(self, g_params, z, g_state=None):
        """G(z) in evaluation mode: (n, latent_dim) -> (n, *data_shape). ``g_params`` and
        ``g_state`` are the generator's (``trees['generator']``, ``state.get('generator')``)."""
        return self.generator.apply(g_params, g_state, z)[0]

    def objectives(self) -> dict:
        """``{'discriminator': ..., 'generator': ...}``: the two fnn objectives over both trees
        on ``batch = x`` (real data), ``(trees, state, x, key, train) -> (loss, (state,
        metrics))``. Each draws its own z ~ N(0, I) from its key; G and D are applied through
        :attr:`network` with keys from ``fold_in(key, 1)`` (D applied to x, then to G(z)).
        Metrics: ``d_real`` = mean sigmoid(D(x)), ``d_fake`` = mean sigmoid(D(G(z)))."""
        def nets(trees, state, key, train):
            return ApplyContext(self.network.name, self.network.children, trees, state,
                                jax.random.fold_in(key, 1), train)

        def d_obj(trees, state, x, key, train):
            z = self.noise(key, x.shape[0])
            c = nets(trees, state, key, train)
            fake = c("generator", z)
            real_logits = c("discriminator", x)
            fake_logits = c("discriminator", fake)
            loss = discriminator_loss(real_logits, fake_logits)
            return loss, (c.state, {"d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
                                    "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits))})

        def g_obj(trees, state, x, key, train):
            z = self.noise(key, x.shape[0])
            c = nets(trees, state, key, train)
            fake_logits = c("discriminator", c("generator", z))
            return generator_loss(fake_logits), (c.state, {})

        return {"discriminator": d_obj, "generator": g_obj}

    def step(self, d_optimizer, g_optimizer, *, order: str = "sequential") -> Callable:
        """The pure step ``(trees, opt_states, x, key, state=None) -> (trees, opt_states,
        metrics)`` (plus the new state last when ``state`` is given, as for BatchNorm
        networks): one discriminator update, then (``order='sequential'``) one generator
        update against the updated discriminator. ``step.init(trees)`` gives the optimizer
        states. Metrics: ``discriminator_loss``, ``generator_loss``,
        ``discriminator_d_real``, ``discriminator_d_fake``."""
        one_of("GAN.step", "order", order, ("sequential", "simultaneous"))
        return multi_step(self.objectives(),
                          {"discriminator": d_optimizer, "generator": g_optimizer}, order=order)


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


def _gan_loop(gan, order, n, batch_size, d_optimizer, g_optimizer, hp) -> EpochLoop:
    """fit_gan's epoch loop (:meth:`GAN.step` in the engine's form, every step's metrics
    kept) with the optimizers' hyperparameters ``hp`` put in (traced inside the program)."""
    optimizers = with_hyperparameters(hp, discriminator=d_optimizer, generator=g_optimizer)
    step = gan.step(optimizers["discriminator"], optimizers["generator"], order=order)
    return EpochLoop(step.checked, batch_size, n, per_step=True)


def fit_gan(gan: GAN, trees, d_optimizer, g_optimizer, data, *, epochs: int, batch_size: int,
            seed: int = 0, snapshot_epochs: Sequence[int] = (), num_snapshot: int = 64,
            order: str = "sequential", model_state=None) -> GANRun:
    """Train a GAN on ``data`` (n, *data_shape) for ``epochs`` shuffled passes (last partial
    batch dropped) on the epoch engine (:mod:`fnn.train.engine`): step t uses key
    ``fold_in(fold_in(key(seed), 1), t)`` and epoch e's shuffle ``fold_in(fold_in(key(seed),
    0), e)``, so a run is a function of its seed. ``model_state`` is the networks' state
    (e.g. BatchNorm statistics), threaded through every step. G's samples for
    ``num_snapshot`` fixed noise vectors (drawn from ``fold_in(key(seed), 2)``) are kept after
    each epoch in ``snapshot_epochs`` (epoch 0: before training).
    """
    data = jnp.asarray(data)
    n = data.shape[0]
    batch_size = integer("fit_gan", "batch_size", batch_size, low=1, high=n)
    epochs = positive_int("fit_gan", "epochs", epochs)
    base = jax.random.key(nonnegative_int("fit_gan", "seed", seed))
    fixed_z = gan.noise(jax.random.fold_in(base, 2), num_snapshot)
    loop_of = functools.partial(_gan_loop, gan, order, n, int(batch_size), d_optimizer,
                                g_optimizer)
    hp = hyperparameters(discriminator=d_optimizer, generator=g_optimizer)
    ts = jax.tree.map(jnp.array, TrainState(  # copies: the engine donates its carry
        trees, {} if model_state is None else model_state,
        {name: opt.init(trees[name]) for name, opt in
         (("discriminator", d_optimizer), ("generator", g_optimizer))}, jnp.zeros((), jnp.int32)))
    run = compiled_epochs(loop_of, hp, ts, data, None)
    g_state = lambda ts: ts.model_state.get("generator")
    sample_args = (ts.params["generator"], fixed_z, g_state(ts))
    sample_key = remembered(("gan_sample", identity(gan), spec(sample_args)),
                            lambda: ("gan_sample", fingerprint(gan.generate, *sample_args)))
    sample = PROGRAMS.get(sample_key, lambda: jax.jit(gan.generate))
    snapshots = ({0: np.asarray(sample(ts.params["generator"], fixed_z, g_state(ts)))}
                 if 0 in snapshot_epochs else {})
    history: dict = {}
    start = time.perf_counter()
    for epoch in range(epochs):
        ts, metrics, _ = run(hp, ts, data, None, epoch_keys(base), epoch, 1)
        for k, v in metrics.items():
            history.setdefault(k, []).append(np.asarray(v[0]))
        if epoch + 1 in snapshot_epochs:
            snapshots[epoch + 1] = np.asarray(sample(ts.params["generator"], fixed_z,
                                                     g_state(ts)))
    seconds = time.perf_counter() - start
    history = {k: np.concatenate(v) for k, v in history.items()}
    return GANRun(ts.params, ts.opt_state, history, snapshots, seconds, ts.model_state)


def dense_generator(latent_dim: int, output_dim: int, hidden: Sequence[int] = (128, 256), *,
                    activation="leaky_relu", output_activation="sigmoid",
                    name: str = "generator") -> Layer:
    """MLP generator: z (batch, latent_dim) -> hidden... -> (batch, output_dim), then
    ``output_activation`` (sigmoid for data in [0, 1])."""
    del latent_dim  # shapes are inferred at init; kept for a readable call site
    act = activations.get(activation)
    layers = [layer for h in hidden for layer in (Dense(h), act)] + [Dense(output_dim)]
    if output_activation is not None:
        layers.append(activations.get(output_activation))
    return serial(*layers, name=name)


def conv_generator(image_shape=(8, 8, 1), channels: Sequence[int] = (64, 32), *,
                   activation="relu", output_activation="sigmoid",
                   name: str = "generator") -> Layer:
    """DCGAN-style generator for NHWC images: :func:`fnn.models.upsampling.conv_decoder`
    (Dense, Reshape, then ConvTranspose2D stride 2 per channel count, each doubling H and W).
    Shapes: z (batch, latent) -> (batch, *image_shape)."""
    return conv_decoder(image_shape, channels, activation=activation,
                        output_activation=output_activation, name=name)


def dense_discriminator(hidden: Sequence[int] = (256, 128), *, activation="leaky_relu",
                        name: str = "discriminator") -> Layer:
    """MLP discriminator: x (batch, d) -> hidden... -> (batch, 1) logits (flatten images
    first with ``fnn.Flatten``)."""
    act = activations.get(activation)
    layers = [layer for h in hidden for layer in (Dense(h), act)] + [Dense(1)]
    return serial(*layers, name=name)
