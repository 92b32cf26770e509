"""Convolutional classifiers: LeNet-5 and a small all-purpose CNN."""
from __future__ import annotations

from typing import Sequence

from fnn import activations
from fnn.core import Layer, serial
from fnn.validation import positive_int
from fnn.layers import AvgPool, Conv2D, Dense, Flatten, MaxPool

__all__ = ["LeNet5", "SimpleCNN"]


def LeNet5(num_classes: int = 10, *, activation="relu", second_padding: str = "VALID",
           name: str = "lenet5") -> Layer:
    """LeCun et al.'s LeNet-5 in NHWC:

        conv 5x5x6 (SAME) - f - avgpool 2 - conv 5x5x16 (second_padding) - f - avgpool 2 -
        flatten - dense 120 - f - dense 84 - f - dense num_classes (logits)

    On 28x28x1 inputs with ``second_padding='VALID'`` the feature maps are 28, 14, 10, 5 as in
    the paper; for the 8x8 digits use ``second_padding='SAME'`` (8, 4, 4, 2).
    """
    positive_int("LeNet5", "num_classes", num_classes)
    act = activations.get(activation)
    return serial(Conv2D(6, 5, padding="SAME"), act, AvgPool(2),
                  Conv2D(16, 5, padding=second_padding), act, AvgPool(2), Flatten(),
                  Dense(120), act, Dense(84), act, Dense(num_classes), name=name)


def SimpleCNN(channels: Sequence[int] = (32, 64), dense: int = 128, num_classes: int = 10, *,
              groups: int = 1, activation="relu", name: str = "cnn") -> Layer:
    """conv 3x3 (channels[0]) - f - [conv 3x3 (channels[i], groups) - f]... - maxpool 2 -
    flatten - dense - f - dense num_classes (logits). ``groups`` applies to every convolution
    after the first (whose input may have a single channel)."""
    for what, value in (("dense", dense), ("num_classes", num_classes), ("groups", groups)):
        positive_int("SimpleCNN", what, value)
    act = activations.get(activation)
    layers = [Conv2D(channels[0], 3), act]
    for width in channels[1:]:
        layers += [Conv2D(width, 3, groups=groups), act]
    layers += [MaxPool(2), Flatten(), Dense(dense), act, Dense(num_classes)]
    return serial(*layers, name=name)
