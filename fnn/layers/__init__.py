"""Layers with parameters or state: one kind per file."""
from fnn.layers.conv import (Conv, Conv1D, Conv2D, Conv3D, ConvTranspose, ConvTranspose1D,
                             ConvTranspose2D, ConvTranspose3D)
from fnn.layers.dense import Dense
from fnn.layers.noise import Dropout, GaussianNoise
from fnn.layers.norm import BatchNorm, LayerNorm
from fnn.layers.pool import AvgPool, GlobalAvgPool, GlobalMaxPool, LPPool, MaxPool
from fnn.layers.reshape import Flatten, Reshape
from fnn.layers.recurrent import (Bidirectional, GRUCell, LSTMCell, Recurrent, SimpleRNNCell,
                                  scan_cell, sequence_mask)

__all__ = [
    "Dense", "Conv", "Conv1D", "Conv2D", "Conv3D", "ConvTranspose", "ConvTranspose1D",
    "ConvTranspose2D", "ConvTranspose3D", "MaxPool", "AvgPool", "LPPool", "GlobalAvgPool",
    "GlobalMaxPool", "BatchNorm", "LayerNorm", "Dropout", "GaussianNoise", "Flatten", "Reshape",
]
__all__ += ["SimpleRNNCell", "LSTMCell", "GRUCell", "Recurrent", "Bidirectional", "scan_cell",
            "sequence_mask"]

_MOVED = {"rnn_from_torch": "fnn.interop.rnn_from_torch",   # #23: not layers
          "EchoStateNetwork": "fnn.models.EchoStateNetwork"}


def __getattr__(name):
    if name in _MOVED:
        raise ImportError(f"fnn.layers.{name} moved to {_MOVED[name]} (also fnn.{name})")
    raise AttributeError(f"module 'fnn.layers' has no attribute {name!r}")
