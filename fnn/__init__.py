"""fnn: functional neural networks in JAX.

Networks are pure functions over parameter pytrees::

    net = fnn.serial(fnn.Dense(50), fnn.relu, fnn.Dense(4))
    params, state = net.init(jax.random.key(0), (2,))
    logits = net(params, x)
"""
from fnn import activations, data, initializers, losses, models, optim, sharding
from fnn.activations import (Activation, Maxout, elu, gelu, leaky_relu, log_softmax, relu, selu,
                             sigmoid, softmax, softplus, step, swish, tanh)
from fnn.check import gradcheck, tree_max_rel_diff
from fnn.core import (Lambda, Layer, as_layer, fan_in_concat, fan_in_sum, fan_out, identity,
                      parallel, residual, serial, summary)
from fnn.layers import Dense
from fnn.layers import (AvgPool, BatchNorm, Conv, Conv1D, Conv2D, Conv3D, ConvTranspose,
                        ConvTranspose1D, ConvTranspose2D, ConvTranspose3D, Dropout, Flatten,
                        GaussianNoise, GlobalAvgPool, GlobalMaxPool, LayerNorm, LPPool, MaxPool,
                        Reshape)
from fnn import interop
from fnn.layers import (Bidirectional, GRUCell, LSTMCell, Recurrent, SimpleRNNCell, scan_cell,
                        sequence_mask)
from fnn.layers import EchoStateNetwork
from fnn.models import MLP, Perceptron, perceptron_rule
from fnn.train import EarlyStopping, FitResult, TrainState, evaluate, fit, supervised, train_step
from fnn.sweep import sweep

__version__ = "0.1.0"
