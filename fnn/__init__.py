"""fnn: functional neural networks in JAX.

Networks are pure functions over parameter pytrees::

    net = fnn.serial(fnn.Dense(50), fnn.relu, fnn.Dense(4))
    params, state = net.init(jax.random.key(0), (2,))
    logits = net(params, x)

Re-exports only; every name lives in (and is documented by) its own module.
"""
from fnn import _moved
from fnn import (activations, checkpoint, data, initializers, interop, layers, losses, models,
                 optim, precision, sharding)
from fnn.activations import (Activation, Maxout, elu, gelu, leaky_relu, log_softmax, relu, selu,
                             sigmoid, softmax, softplus, step, swish, tanh)
from fnn.check import gradcheck, tree_max_rel_diff
from fnn.core import (Lambda, Layer, ParamsError, Summary, as_layer, check_params, composite,
                      fan_in_concat, fan_in_sum, fan_out, identity, parallel, per_example,
                      residual, serial, summary)
from fnn.layers import (AvgPool, BatchNorm, Bidirectional, Conv, Conv1D, Conv2D, Conv3D,
                        ConvTranspose, ConvTranspose1D, ConvTranspose2D, ConvTranspose3D, Dense,
                        Dropout, Flatten, GaussianNoise, GlobalAvgPool,
                        GlobalMaxPool, GRUCell, LayerNorm, LPPool, LSTMCell, MaxPool, Recurrent,
                        Reshape, SimpleRNNCell, scan_cell, sequence_mask)
from fnn.interop import rnn_from_torch
from fnn.models import (MLP, EchoStateNetwork, LeNet5, Perceptron, PlainNet, ResNet, SimpleCNN,
                        basic_block, perceptron_rule)
from fnn.sweeps import sweep
from fnn.train import (DivergenceWarning, EarlyStop, EarlyStopping, FitResult, NonFiniteError, NonFiniteReport, TrainState,
                       evaluate, fit, multi_step, supervised, train_step)

__version__ = "0.1.0"


__all__ = [
    # modules
    "activations", "checkpoint", "data", "initializers", "interop", "layers", "losses",
    "models", "optim", "precision", "sharding",
    # the layer protocol and combinators (fnn.core)
    "Layer", "Lambda", "as_layer", "identity", "serial", "parallel", "fan_out", "fan_in_sum",
    "fan_in_concat", "residual", "composite", "per_example", "check_params", "ParamsError",
    "summary", "Summary",
    # activations
    "step", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "softplus", "swish",
    "softmax", "log_softmax", "Activation", "Maxout",
    # layers
    "Dense", "Conv", "Conv1D", "Conv2D", "Conv3D", "ConvTranspose", "ConvTranspose1D",
    "ConvTranspose2D", "ConvTranspose3D", "MaxPool", "AvgPool", "LPPool", "GlobalAvgPool",
    "GlobalMaxPool", "BatchNorm", "LayerNorm", "Dropout", "GaussianNoise", "Flatten", "Reshape",
    "SimpleRNNCell", "LSTMCell", "GRUCell", "Recurrent", "Bidirectional", "scan_cell",
    "sequence_mask", "rnn_from_torch", "EchoStateNetwork",
    # models
    "MLP", "Perceptron", "perceptron_rule", "LeNet5", "SimpleCNN", "ResNet", "PlainNet",
    "basic_block",
    # training
    "supervised", "train_step", "fit", "evaluate", "EarlyStopping", "FitResult", "TrainState",
    "NonFiniteError", "NonFiniteReport", "DivergenceWarning", "EarlyStop", "multi_step", "sweep",
    # gradient checks
    "gradcheck", "tree_max_rel_diff",
]
