"""Residual networks (He et al. 2016) and their plain twins without shortcuts."""
from __future__ import annotations

from typing import Sequence

from fnn.activations import relu
from fnn.core import Layer, residual, serial
from fnn.validation import positive_int
from fnn.layers import BatchNorm, Conv2D, Dense, GlobalAvgPool

__all__ = ["basic_block", "ResNet", "PlainNet"]


def basic_block(width: int, strides: int = 1, *, shortcut: bool = True,
                project: bool = False) -> Layer:
    """Two 3x3 convolutions with BatchNorm: y = relu(F(x) + S(x)),

        F(x) = BN(conv3x3(relu(BN(conv3x3_stride(x)))))
        S(x) = x (identity) or BN(conv1x1_stride(x)) (projection, when the shape changes)

    With ``shortcut=False`` the block is plain: y = relu(F(x)).
    """
    positive_int("basic_block", "width", width)
    positive_int("basic_block", "strides", strides)
    body = serial(Conv2D(width, 3, strides=strides, use_bias=False), BatchNorm(), relu,
                  Conv2D(width, 3, use_bias=False), BatchNorm())
    if not shortcut:
        return serial(body, relu, name="plain_block")
    projection = (serial(Conv2D(width, 1, strides=strides, use_bias=False), BatchNorm())
                  if project else None)
    return serial(residual(body, projection), relu, name="basic_block")


def _network(stage_sizes, widths, num_classes, shortcut, name) -> Layer:
    if len(stage_sizes) != len(widths):
        raise ValueError(f"{name}: stage_sizes {tuple(stage_sizes)} and widths {tuple(widths)} "
                         f"must have the same length")
    layers = [Conv2D(widths[0], 3, use_bias=False), BatchNorm(), relu]
    in_width = widths[0]
    for stage, (blocks, width) in enumerate(zip(stage_sizes, widths)):
        for i in range(blocks):
            strides = 2 if (stage > 0 and i == 0) else 1
            layers.append(basic_block(width, strides, shortcut=shortcut,
                                      project=strides != 1 or width != in_width))
            in_width = width
    layers += [GlobalAvgPool(), Dense(num_classes)]
    return serial(*layers, name=name)


def ResNet(stage_sizes: Sequence[int] = (3, 3, 3), widths: Sequence[int] = (16, 32, 64),
           num_classes: int = 10, *, name: str = "resnet") -> Layer:
    """The CIFAR-style ResNet: a 3x3 stem, stages of :func:`basic_block` (the first block of
    each later stage halves the resolution and uses a 1x1 projection shortcut), global average
    pooling and a dense classifier. Depth = 2 * sum(stage_sizes) + 2 (ResNet-20 by default).

    Shapes: x (batch, H, W, C) -> logits (batch, num_classes). Has BatchNorm state: use
    ``net.apply(params, state, x, train=...)``.
    """
    positive_int("ResNet", "num_classes", num_classes)
    return _network(stage_sizes, widths, num_classes, True, name)


def PlainNet(stage_sizes: Sequence[int] = (3, 3, 3), widths: Sequence[int] = (16, 32, 64),
             num_classes: int = 10, *, name: str = "plain") -> Layer:
    """:func:`ResNet` of the same depth and widths with every shortcut removed."""
    positive_int("PlainNet", "num_classes", num_classes)
    return _network(stage_sizes, widths, num_classes, False, name)
