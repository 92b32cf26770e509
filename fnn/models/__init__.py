"""Models: compositions of layers (one model per file)."""
from fnn.models.mlp import MLP
from fnn.models.perceptron import Perceptron, PerceptronRun, perceptron_rule

__all__ = ["MLP", "Perceptron", "PerceptronRun", "perceptron_rule"]
