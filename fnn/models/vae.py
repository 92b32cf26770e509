"""The variational autoencoder (Kingma & Welling 2014): a Gaussian encoder q(z|x), the
reparameterisation trick with an explicit key, a Bernoulli or Gaussian decoder p(x|z), the
ELBO with the closed-form Gaussian KL, prior samples and latent interpolation."""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import jax
import jax.numpy as jnp

from fnn import activations
from fnn.core import ApplyContext, Layer, as_layer, composite, require_key, serial
from fnn.layers.dense import Dense
from fnn.validation import number, one_of, positive_int

__all__ = ["VAE", "VAELayer", "dense_vae", "gaussian_kl", "reparameterize", "elbo",
           "vae_objective", "interpolate"]

_LOG_2PI = math.log(2 * math.pi)


def gaussian_kl(mean, logvar):
    """KL(N(mean, diag exp(logvar)) || N(0, I)) per example, in closed form:

        KL = 1/2 sum_j (mean_j^2 + exp(logvar_j) - 1 - logvar_j)

    Shapes: mean, logvar (batch, latent) -> (batch,).
    """
    return 0.5 * jnp.sum(mean ** 2 + jnp.exp(logvar) - 1.0 - logvar, axis=-1)


def reparameterize(key, mean, logvar):
    """z = mean + exp(logvar / 2) * eps, eps ~ N(0, I) drawn from ``key``: a sample of
    q(z|x) that is differentiable in (mean, logvar). Shapes: (batch, latent) -> same."""
    eps = jax.random.normal(key, mean.shape, mean.dtype)
    return mean + jnp.exp(0.5 * logvar) * eps


@dataclasses.dataclass(frozen=True)
class VAELayer(Layer):
    """The layer :func:`VAE` returns, with pure helpers over its params (evaluation mode unless
    said otherwise; ``state`` is the VAE's, and may be None when it is stateless)."""

    encoder: Layer | None = None
    decoder: Layer | None = None
    latent_dim: int = 0
    likelihood: str = "bernoulli"
    output_logvar: float = 0.0

    def _halves(self, params, state, key=None, train=False) -> ApplyContext:
        return ApplyContext(self.name, self.children, params, state, key, train)

    def encode(self, params, x, state=None):
        """(mean, logvar) of q(z|x): (batch, *input_shape) -> two (batch, latent_dim)."""
        h = self._halves(params, state)("encoder", x)
        return h[:, :self.latent_dim], h[:, self.latent_dim:]

    def decode(self, params, z, state=None):
        """The decoder's output for z: Bernoulli logits or Gaussian means (batch, *input_shape)."""
        return self._halves(params, state)("decoder", z)

    def mean_image(self, params, z, state=None):
        """E[x|z]: sigmoid(logits) (Bernoulli) or the mean (Gaussian)."""
        out = self.decode(params, z, state)
        return jax.nn.sigmoid(out) if self.likelihood == "bernoulli" else out

    def log_likelihood(self, out, x):
        """log p(x|z) per example, summed over pixels, from the decoder output ``out``:

        Bernoulli (logits l): sum x l - softplus(l)   (x in [0, 1], continuous x allowed)
        Gaussian (mean m, fixed variance s^2 = exp(output_logvar)):
            sum -1/2 ((x - m)^2 / s^2 + log s^2 + log 2 pi)
        Shapes: out, x (batch, ...) -> (batch,).
        """
        axes = tuple(range(1, x.ndim))
        x = x.astype(out.dtype)
        if self.likelihood == "bernoulli":
            return jnp.sum(x * out - jax.nn.softplus(out), axis=axes)
        lv = self.output_logvar
        return jnp.sum(-0.5 * ((x - out) ** 2 * math.exp(-lv) + lv + _LOG_2PI), axis=axes)

    def sample(self, params, key, n: int, state=None):
        """n images E[x|z] with z ~ N(0, I) from the prior: (n, *input_shape)."""
        z = jax.random.normal(key, (n, self.latent_dim), jnp.float32)
        return self.mean_image(params, z, state)

    def elbo(self, params, state, x, key, *, train: bool = False, samples: int = 1,
             beta: float = 1.0):
        """Per-example Monte-Carlo ELBO and its parts, through the encoder and decoder in
        ``train`` mode (Dropout active, BatchNorm batch statistics), state threaded:

            ELBO(x) = 1/S sum_s log p(x | z_s) - beta * KL(q(z|x) || N(0, I)),
            z_s = mean + exp(logvar/2) * eps_s,  eps_s ~ N(0, I) from k_s = split(key, S)[s]

        The networks' own keys come from ``fold_in(key, 1)`` (encoder) and ``fold_in(k_s, 1)``
        (decoder, sample s). A decoder with state (BatchNorm) trains with one sample only.
        Returns ``((elbo, reconstruction, kl), state)``, each (batch,), in nats
        (reconstruction: the expected log-likelihood, <= 0 for Bernoulli).
        """
        samples = positive_int(f"{self.name}.elbo", "samples", samples)
        if train and samples > 1 and self.decoder.stateful:
            raise ValueError(f"{self.name}.elbo: a decoder with state (BatchNorm) trains with "
                             f"samples=1, got {samples} (each sample would update its "
                             f"running statistics)")
        c = self._halves(params, state, jax.random.fold_in(key, 1), train)
        h = c("encoder", x)
        mean, logvar = h[:, :self.latent_dim], h[:, self.latent_dim:]

        def decoded(k):  # one sample: log p(x | z_s) and the state after decoding z_s
            d = self._halves(params, c.state, jax.random.fold_in(k, 1), train)
            out = d("decoder", reparameterize(k, mean, logvar))
            return self.log_likelihood(out, x), d.state

        lls, states = jax.vmap(decoded)(jax.random.split(key, samples))
        rec, kl = jnp.mean(lls, axis=0), gaussian_kl(mean, logvar)
        return (rec - beta * kl, rec, kl), jax.tree.map(lambda a: a[0], states)


def VAE(encoder, decoder, latent_dim: int, *, likelihood: str = "bernoulli",
        output_logvar: float = 0.0, name: str = "vae") -> VAELayer:
    """A VAE from an encoder with 2 * latent_dim outputs, read as (mean, logvar) of q(z|x),
    and a decoder from latent_dim to the input shape (Bernoulli logits or Gaussian means).

    ``apply(params, state, x, key=k)`` returns ``((out, mean, logvar), state)`` where
    ``out = decoder(z)``, z = mean + exp(logvar/2) * eps drawn from the first of
    ``split(k, 3)`` (:func:`reparameterize`; the encoder and decoder get the others); without
    a key z = mean (deterministic evaluation; training without a key raises). Train it with
    :func:`vae_objective`.

    Params: ``{'encoder': ..., 'decoder': ...}`` (likewise the state, for BatchNorm halves).
    Shapes: x (batch, *input_shape) -> out (batch, *input_shape), mean, logvar (batch, latent).
    """
    encoder, decoder = as_layer(encoder, name, "encoder"), as_layer(decoder, name, "decoder")
    latent_dim = positive_int(name, "latent_dim", latent_dim)
    one_of(name, "likelihood", likelihood, ("bernoulli", "gaussian"))
    output_logvar = number(name, "output_logvar", output_logvar)

    def init(c, shape):
        h = c("encoder", shape)
        if h != (2 * latent_dim,):
            raise ValueError(f"{name}: the encoder must output (2 * latent_dim,) = "
                             f"({2 * latent_dim},) values (mean and logvar), got {h}")
        out = c("decoder", (latent_dim,))
        if out != shape:
            raise ValueError(f"{name}: the decoder maps ({latent_dim},) to {out}, but it must "
                             f"give back the input shape {shape}")
        return shape, (latent_dim,), (latent_dim,)

    def apply(c, x):
        if c.train:
            require_key(name, c.key, "training samples z ~ q(z|x)")
        h = c("encoder", x)
        mean, logvar = h[:, :latent_dim], h[:, latent_dim:]
        z = mean if c.key is None else reparameterize(c.key, mean, logvar)
        return c("decoder", z), mean, logvar

    return composite(name, {"encoder": encoder, "decoder": decoder}, init, apply, own_key=True,
                     layer_class=VAELayer, encoder=encoder, decoder=decoder,
                     latent_dim=latent_dim, likelihood=likelihood, output_logvar=output_logvar)


def elbo(vae: VAELayer, params, x, key, *, samples: int = 1, beta: float = 1.0, state=None):
    """:meth:`VAELayer.elbo` in evaluation mode: ``(elbo, reconstruction, kl)``, each (batch,).
    ``state`` may be None for a stateless VAE."""
    return vae.elbo(params, {} if state is None else state, x, key, samples=samples,
                    beta=beta)[0]


def vae_objective(vae: VAELayer, *, beta: float = 1.0, eval_samples: int = 1,
                  eval_seed: int = 0):
    """The fnn objective on ``batch = x``: loss = -mean_batch ELBO(x) (nats per example),
    through :meth:`VAELayer.elbo` in the step's ``train`` mode, with the model state threaded.

    Training draws z from the step's key. Evaluation (``key=None``, as ``fit``'s validation)
    estimates the same expectation with ``eval_samples`` draws from the fixed key
    ``jax.random.key(eval_seed)``, so it is deterministic. Metrics: ``loss`` (= -ELBO),
    ``elbo``, ``reconstruction`` (mean log p(x|z)), ``kl``.
    """
    beta = number("vae_objective", "beta", beta, low=0)
    eval_samples = positive_int("vae_objective", "eval_samples", eval_samples)

    def objective(params, state, batch, key, train):
        samples = 1
        if key is None:
            key, samples = jax.random.key(eval_seed), eval_samples
        (e, rec, kl), state = vae.elbo(params, state, batch, key, train=train, samples=samples,
                                       beta=beta)
        loss = -jnp.mean(e)
        return loss, (state, {"loss": loss, "elbo": jnp.mean(rec - kl),
                              "reconstruction": jnp.mean(rec), "kl": jnp.mean(kl)})

    return objective


def interpolate(vae: VAELayer, params, x0, x1, steps: int = 8, *, state=None):
    """Decode the straight line between the posterior means of two inputs:

        z_t = (1 - t) mean(x0) + t mean(x1),  t = 0, 1/(steps-1), ..., 1

    Shapes: x0, x1 (*input_shape) (single examples) -> (steps, *input_shape) images E[x|z_t].
    """
    steps = positive_int("interpolate", "steps", steps)
    m0, _ = vae.encode(params, x0[None], state)
    m1, _ = vae.encode(params, x1[None], state)
    t = jnp.linspace(0.0, 1.0, steps, dtype=m0.dtype)[:, None]
    return vae.mean_image(params, (1 - t) * m0 + t * m1, state)


def dense_vae(input_dim: int, latent_dim: int, hidden: Sequence[int] = (256,), *,
              activation="relu", likelihood: str = "bernoulli", name: str = "vae") -> VAELayer:
    """MLP VAE: encoder input_dim -> hidden... -> 2*latent_dim (mean, logvar); decoder
    latent_dim -> reversed hidden... -> input_dim (logits or means).
    Shapes: x (batch, input_dim)."""
    act = activations.get(activation)
    enc = [layer for h in hidden for layer in (Dense(h), act)] + [Dense(2 * latent_dim)]
    dec = [layer for h in reversed(hidden) for layer in (Dense(h), act)] + [Dense(input_dim)]
    return VAE(serial(*enc, name="encoder"), serial(*dec, name="decoder"), latent_dim,
               likelihood=likelihood, name=name)
