"""Generative adversarial networks (Goodfellow et al. 2014): a generator G(z) and a
discriminator D(x) (logits), the standard discriminator loss and the non-saturating generator
loss (:meth:`GAN.objectives`). Training them is :mod:`fnn.train`'s job: the two-tree step is
:func:`fnn.train.gan_step` (:func:`fnn.train.multi_step` over the objectives) and ``fnn.fit``
or :func:`fnn.train.fit_gan` trains it."""
from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp

from fnn import activations
from fnn.core import ApplyContext, Layer, as_layer, composite, require_key, serial
from fnn.layers.dense import Dense
from fnn.models.upsampling import conv_decoder
from fnn.validation import positive_int

__all__ = ["GAN", "discriminator_loss", "generator_loss", "dense_generator", "conv_generator",
           "dense_discriminator"]


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

    def noise_like(self, key, x):
        """z ~ N(0, I) for the batch ``x``: (len(x), latent_dim), in x's dtype when x is
        floating (a precision policy's compute dtype), else float32."""
        z = self.noise(key, x.shape[0])
        return z.astype(x.dtype) if jnp.issubdtype(x.dtype, jnp.floating) else z

    def objectives(self) -> dict:
        """``{'discriminator': ..., 'generator': ...}``: the two fnn objectives over both trees
        on ``batch = x`` (real data), ``(trees, state, x, key, train) -> (loss, (state,
        metrics))``. Each draws its own z ~ N(0, I) from its key; G and D are applied through
        :attr:`network` with keys from ``fold_in(key, 1)`` (D applied to x, then to G(z)).
        z takes the dtype of x (a precision policy's compute dtype). Metrics: ``d_real`` =
        mean sigmoid(D(x)), ``d_fake`` = mean sigmoid(D(G(z)))."""
        def nets(trees, state, key, train):
            return ApplyContext(self.network.name, self.network.children, trees, state,
                                jax.random.fold_in(key, 1), train)

        def d_obj(trees, state, x, key, train):
            z = self.noise_like(key, x)
            c = nets(trees, state, key, train)
            fake = c("generator", z)
            real_logits = c("discriminator", x)
            fake_logits = c("discriminator", fake)
            loss = discriminator_loss(real_logits, fake_logits)
            return loss, (c.state, {"d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
                                    "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits))})

        def g_obj(trees, state, x, key, train):
            z = self.noise_like(key, x)
            c = nets(trees, state, key, train)
            fake_logits = c("discriminator", c("generator", z))
            return generator_loss(fake_logits), (c.state, {})

        return {"discriminator": d_obj, "generator": g_obj}

    def step(self, *args, **kwargs):
        """Moved: the two-tree step is ``fnn.train.gan_step(gan, d_optimizer, g_optimizer)``
        (a model never imports ``fnn.train``)."""
        raise TypeError("GAN.step: the GAN's step moved to fnn.train.gan_step(gan, d_optimizer, "
                        "g_optimizer, order=...); train it with fnn.fit(step, trees, None, "
                        "data, ...) or fnn.train.fit_gan")



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
