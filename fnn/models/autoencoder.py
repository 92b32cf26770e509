"""Autoencoders: an encoder and a decoder composed into one layer (dense, convolutional,
denoising)."""
from __future__ import annotations

import dataclasses
from typing import Sequence

import jax

from fnn import activations
from fnn.core import Layer, _apply_child, _check_children, as_layer, serial
from fnn.layers.conv import Conv2D
from fnn.layers.dense import Dense
from fnn.layers.noise import _check_real, _need_key
from fnn.layers.reshape import Flatten
from fnn.models.upsampling import conv_decoder

__all__ = ["Autoencoder", "AutoencoderLayer", "dense_autoencoder", "conv_autoencoder"]


@dataclasses.dataclass(frozen=True)
class AutoencoderLayer(Layer):
    """The layer :func:`Autoencoder` returns: a :class:`~fnn.core.Layer` plus its two halves
    and the helpers :meth:`encode` / :meth:`decode` (evaluation mode, no key)."""

    encoder: Layer | None = None
    decoder: Layer | None = None
    noise_std: float = 0.0

    def encode(self, params, x, state=None):
        """z = encoder(x): (batch, *input_shape) -> (batch, *latent_shape), evaluation mode."""
        state = {} if state is None else state
        return self.encoder.apply(params["encoder"], state.get("encoder", {}), x)[0]

    def decode(self, params, z, state=None):
        """x_hat = decoder(z): (batch, *latent_shape) -> (batch, *input_shape), evaluation mode."""
        state = {} if state is None else state
        return self.decoder.apply(params["decoder"], state.get("decoder", {}), z)[0]


def Autoencoder(encoder, decoder, *, noise_std: float = 0.0,
                name: str = "autoencoder") -> AutoencoderLayer:
    """x_hat = decoder(encoder(x_tilde)), with x_tilde = x + noise_std * N(0, 1) in training
    (a denoising autoencoder, Vincent et al. 2008) and x_tilde = x in evaluation.

    The decoder must map the latent shape back to the input shape (checked at init). Train it
    with ``fnn.supervised(ae, fnn.losses.mse)`` on ``(x, x)``: the target is the clean x.
    With ``noise_std > 0`` training needs a key (``fit`` supplies one per step).

    Params: ``{'encoder': ..., 'decoder': ...}`` (likewise the state).
    Shapes: x (batch, *input_shape) -> x_hat (batch, *input_shape).
    """
    encoder, decoder = as_layer(encoder), as_layer(decoder)
    _check_real(name, "noise_std", noise_std, lambda s: s >= 0, "a number >= 0")
    children = (("encoder", encoder), ("decoder", decoder))

    def init_fn(key, shape):
        k_enc, k_dec = jax.random.split(key)
        latent, p_enc, s_enc = encoder.init_fn(k_enc, shape)
        out, p_dec, s_dec = decoder.init_fn(k_dec, latent)
        if out != shape:
            raise ValueError(f"{name}: the decoder maps the latent shape {latent} to {out}, but "
                             f"it must give back the input shape {shape}")
        params = {k: v for k, v in (("encoder", p_enc), ("decoder", p_dec)) if v}
        state = {k: v for k, v in (("encoder", s_enc), ("decoder", s_dec)) if v}
        return shape, params, state

    def apply_fn(params, state, x, key, train):
        _check_children(name, params, children)
        k_noise, k_enc, k_dec = (None,) * 3 if key is None else jax.random.split(key, 3)
        if train and noise_std > 0:
            _need_key(name, key)
            x = x + noise_std * jax.random.normal(k_noise, x.shape, x.dtype)
        z, s_enc = _apply_child(name, "encoder", encoder, params, state, x, k_enc, train)
        y, s_dec = _apply_child(name, "decoder", decoder, params, state, z, k_dec, train)
        return y, {k: v for k, v in (("encoder", s_enc), ("decoder", s_dec)) if v}

    return AutoencoderLayer(name, init_fn, apply_fn, encoder.stateful or decoder.stateful,
                            children, encoder=encoder, decoder=decoder,
                            noise_std=float(noise_std))


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
