"""The upsampling convolutional stack shared by conv decoders and generators."""
from __future__ import annotations

from typing import Sequence

from fnn import activations
from fnn.core import Layer, serial
from fnn.layers.conv import ConvTranspose2D
from fnn.layers.dense import Dense
from fnn.layers.reshape import Reshape

__all__ = ["conv_decoder"]


def conv_decoder(image_shape=(8, 8, 1), channels: Sequence[int] = (64, 32), *,
                 activation="relu", output_activation="sigmoid", name: str = "decoder") -> Layer:
    """z (batch, latent) -> (batch, *image_shape), DCGAN-style:

        Dense(h*w*channels[0]), act, Reshape((h, w, channels[0])),
        [ConvTranspose2D(c, 3, strides=2, 'SAME'), act] for c in channels[1:],
        ConvTranspose2D(image channels, 3, strides=2, 'SAME'), output_activation

    Every ConvTranspose2D doubles H and W, so h = H / 2**len(channels) (2 -> 4 -> 8 for the
    8x8 digits with two channel counts).
    """
    height, width, c_img = image_shape
    scale = 2 ** len(channels)
    if height % scale or width % scale:
        raise ValueError(f"{name}: image sides {height}x{width} must be divisible by "
                         f"2**len(channels) = {scale}")
    act = activations.get(activation)
    h, w = height // scale, width // scale
    layers = [Dense(h * w * channels[0]), act, Reshape((h, w, channels[0]))]
    for c in channels[1:]:
        layers += [ConvTranspose2D(c, 3, strides=2), act]
    layers.append(ConvTranspose2D(c_img, 3, strides=2))
    if output_activation is not None:
        layers.append(activations.get(output_activation))
    return serial(*layers, name=name)
