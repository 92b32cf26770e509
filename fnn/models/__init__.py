"""Models: compositions of layers (one model per file)."""
from fnn.models.cnn import LeNet5, SimpleCNN
from fnn.models.mlp import MLP
from fnn.models.perceptron import Perceptron, PerceptronRun, perceptron_rule
from fnn.models.reservoir import EchoStateNetwork
from fnn.models.resnet import PlainNet, ResNet, basic_block

__all__ = ["MLP", "Perceptron", "PerceptronRun", "perceptron_rule", "LeNet5", "SimpleCNN",
           "ResNet", "PlainNet", "basic_block", "EchoStateNetwork"]
from fnn.models.autoencoder import (Autoencoder, AutoencoderLayer, conv_autoencoder,
                                    dense_autoencoder)
from fnn.models.vae import (VAE, VAELayer, dense_vae, elbo, gaussian_kl, interpolate,
                            reparameterize, vae_objective)
from fnn.models.gan import (GAN, conv_generator, dense_discriminator, dense_generator,
                            discriminator_loss, generator_loss)

__all__ += ["Autoencoder", "AutoencoderLayer", "dense_autoencoder", "conv_autoencoder",
            "VAE", "VAELayer", "dense_vae", "elbo", "gaussian_kl", "interpolate",
            "reparameterize", "vae_objective",
            "GAN", "dense_generator", "conv_generator", "dense_discriminator",
            "discriminator_loss", "generator_loss"]


MOVED = {"fit_gan": "fnn.train.fit_gan", "GANRun": "fnn.train.GANRun"}


def __getattr__(name: str):
    """A name that moved to fnn.train (a model never imports train) says where it went."""
    if name in MOVED:
        raise AttributeError(f"fnn.models.{name} moved to {MOVED[name]} (training a model is "
                             f"fnn.train's job): use {MOVED[name]}")
    raise AttributeError(f"module 'fnn.models' has no attribute {name!r}")
