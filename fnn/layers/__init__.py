"""Layers with parameters or state: one kind per file."""
from fnn.layers.conv import (Conv, Conv1D, Conv2D, Conv3D, ConvTranspose, ConvTranspose1D,
                             ConvTranspose2D, ConvTranspose3D)
from fnn.layers.dense import Dense
from fnn.layers.noise import Dropout, GaussianNoise
from fnn.layers.norm import BatchNorm, LayerNorm
from fnn.layers.pool import AvgPool, GlobalAvgPool, GlobalMaxPool, LPPool, MaxPool
from fnn.layers.reshape import Flatten, Reshape

__all__ = [
    "Dense", "Conv", "Conv1D", "Conv2D", "Conv3D", "ConvTranspose", "ConvTranspose1D",
    "ConvTranspose2D", "ConvTranspose3D", "MaxPool", "AvgPool", "LPPool", "GlobalAvgPool",
    "GlobalMaxPool", "BatchNorm", "LayerNorm", "Dropout", "GaussianNoise", "Flatten", "Reshape",
]
