"""Models: compositions of layers (one model per file)."""
from fnn.models.cnn import LeNet5, SimpleCNN
from fnn.models.mlp import MLP
from fnn.models.perceptron import Perceptron, PerceptronRun, perceptron_rule
from fnn.models.resnet import PlainNet, ResNet, basic_block

__all__ = ["MLP", "Perceptron", "PerceptronRun", "perceptron_rule", "LeNet5", "SimpleCNN",
           "ResNet", "PlainNet", "basic_block"]
