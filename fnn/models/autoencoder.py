"""Autoencoders: an encoder and a decoder composed into one layer (dense, convolutional,
denoising)."""
from __future__ import annotations

import dataclasses
from typing import Sequence

import jax

from fnn import activations
from fnn.core import ApplyContext, Layer, as_layer, composite, require_key, serial
from fnn.layers.conv import Conv2D
from fnn.layers.dense import Dense
from fnn.layers.reshape import Flatten
from fnn.models.upsampling import conv_decoder
from fnn.validation import number

__all__ = ["Autoencoder", "AutoencoderLayer", "dense_autoencoder", "conv_autoencoder"]


@dataclasses.dataclass(frozen=True)
class AutoencoderLayer(Layer):
    """The layer :func:`Autoencoder` returns: a :class:`~fnn.core.Layer` plus its two halves
    and the helpers :meth:`encode` / :meth:`decode` (evaluation mode, no key)."""

    encoder: Layer | None = None
    decoder: Layer | None = None
    noise_std: float = 0.0

    def _half(self, name, params, state, x):
        return ApplyContext(self.name, self.children, params, state, None, False)(name, x)

    def encode(self, params, x, state=None):
        """z = encoder(x): (batch, *input_shape) -> (batch, *latent_shape), evaluation mode.
        ``params`` and ``state`` are the autoencoder's (``state`` may be None if stateless)."""
        return self._half("encoder", params, state, x)

    def decode(self, params, z, state=None):
        """x_hat = decoder(z): (batch, *latent_shape) -> (batch, *input_shape), evaluation mode."""
        return self._half("decoder", params, state, z)


def Autoencoder(encoder, decoder, *, noise_std: float = 0.0,
                name: str = "autoencoder") -> AutoencoderLayer:
    """x_hat = decoder(encoder(x_tilde)), with x_tilde = x + noise_std * N(0, 1) in training
    (a denoising autoencoder, Vincent et al. 2008) and x_tilde = x in evaluation.

    The decoder must map the latent shape back to the input shape (checked at init). Train it
    with ``fnn.supervised(ae, fnn.losses.mse)`` on ``(x, x)``: the target is the clean x.
    With ``noise_std > 0`` training needs a key (``fit`` supplies one per step). Keys: of
    ``split(key, 3)`` the noise draws from the first, the encoder and decoder get the others.

    Params: ``{'encoder': ..., 'decoder': ...}`` (likewise the state).
    Shapes: x (batch, *input_shape) -> x_hat (batch, *input_shape).
    """
    noise_std = number(name, "noise_std", noise_std, low=0)

    def init(c, shape):
        latent = c("encoder", shape)
        out = c("decoder", latent)
        if out != shape:
            raise ValueError(f"{name}: the decoder maps the latent shape {latent} to {out}, but "
                             f"it must give back the input shape {shape}")
        return shape

    def apply(c, x):
        if c.train and noise_std > 0:
            require_key(name, c.key)
            x = x + noise_std * jax.random.normal(c.key, x.shape, x.dtype)
        return c("decoder", c("encoder", x))

    encoder, decoder = as_layer(encoder, name, "encoder"), as_layer(decoder, name, "decoder")
    return composite(name, {"encoder": encoder, "decoder": decoder}, init, apply, own_key=True,
                     layer_class=AutoencoderLayer, encoder=encoder, decoder=decoder,
                     noise_std=noise_std)


def dense_autoencoder(input_dim: int, latent_dim: int, hidden: Sequence[int] = (128,), *,
                      activation="relu", output_activation="sigmoid", noise_std: float = 0.0,
                      name: str = "autoencoder") -> AutoencoderLayer:
    """A mirrored MLP autoencoder: input_dim -> hidden... -> latent_dim (linear) -> reversed
    hidden... -> input_dim, followed by ``output_activation`` (sigmoid for data in [0, 1]).

    Shapes: x (batch, input_dim) -> (batch, input_dim); ``encode``: -> (batch, latent_dim).
    """
    act = activations.get(activation)
    enc = [layer for h in hidden for layer in (Dense(h), act)] + [Dense(latent_dim)]
    dec = [layer for h in reversed(hidden) for layer in (Dense(h), act)] + [Dense(input_dim)]
    if output_activation is not None:
        dec.append(activations.get(output_activation))
    return Autoencoder(serial(*enc, name="encoder"), serial(*dec, name="decoder"),
                       noise_std=noise_std, name=name)


def conv_autoencoder(latent_dim: int, image_shape=(8, 8, 1), channels: Sequence[int] = (16, 32),
                     *, activation="relu", output_activation="sigmoid", noise_std: float = 0.0,
                     name: str = "conv_autoencoder") -> AutoencoderLayer:
    """A convolutional autoencoder for NHWC images (8x8x1 digits by default).

    encoder: [Conv2D(c, 3, strides=2, 'SAME'), act] per c in ``channels`` (each halves H and
    W: 8 -> 4 -> 2), Flatten, Dense(latent_dim).
    decoder: Dense(h*w*c_last), act, Reshape((h, w, c_last)), then ConvTranspose2D(c, 3,
    strides=2, 'SAME') per reversed channel (each doubles H and W: 2 -> 4 -> 8; the last one
    has the image's channels), then ``output_activation``.

    Shapes: x (batch, H, W, C) -> (batch, H, W, C); ``encode``: -> (batch, latent_dim).
    """
    height, width, _ = image_shape
    if height % 2 ** len(channels) or width % 2 ** len(channels):
        raise ValueError(f"{name}: image sides {height}x{width} must be divisible by "
                         f"2**len(channels) = {2 ** len(channels)}")
    act = activations.get(activation)
    enc = [layer for c in channels for layer in (Conv2D(c, 3, strides=2), act)]
    enc += [Flatten(), Dense(latent_dim)]
    decoder = conv_decoder(image_shape, tuple(reversed(channels)), activation=activation,
                           output_activation=output_activation, name="decoder")
    return Autoencoder(serial(*enc, name="encoder"), decoder,
                       noise_std=noise_std, name=name)
