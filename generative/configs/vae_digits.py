"""VAE on 28×28 digits: conv nets, Bernoulli decoder on dynamically binarised pixels.

generative train --config vae_digits --workdir runs/vae_digits
generative eval --config vae_digits --workdir runs/vae_digits

Digits are MNIST when tensorflow-datasets has it prepared, else the offline font digits
(`data.source`). The reported NLL is −IWAE_k (k = eval.iwae_k) on eval.num_test test digits.
The other VAE presets start from `vae_config()` and share `CHECKS`.
"""

import ml_collections

from generative.core.config import (
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    base_config,
    one_of,
)

# The choice lists of generative.vae (kept here so that listing presets imports no JAX).
DATASETS = ("digits", "cifar10", "celeb_a", "toy")  # generative.vae.DATASETS
NETS = ("mlp", "conv")  # generative.vae.NETS
DECODERS = ("bernoulli", "gaussian")  # generative.vae.DECODERS
SIGMA_MODES = ("learned", "fixed")  # generative.vae.SIGMA_MODES

CHECKS = {
    "family": one_of("vae"),
    "batch_size": POSITIVE_INT,
    "data.name": one_of(*DATASETS),
    "data.source": one_of("auto", "mnist", "font"),
    "data.num_font_digits": NON_NEGATIVE_INT,
    "data.binarize": one_of(True, False),
    "model.net": one_of(*NETS),
    "model.decoder": one_of(*DECODERS),
    "model.sigma_mode": one_of(*SIGMA_MODES),
    "model.sigma": POSITIVE,
    "model.latent_dim": POSITIVE_INT,
    "model.hidden": POSITIVE_INT,
    "model.layers": POSITIVE_INT,
    "model.nf": POSITIVE_INT,
    "eval.iwae_k": POSITIVE_INT,
    "eval.num_test": POSITIVE_INT,
    "eval.batch": POSITIVE_INT,
    "eval.decode_chunk": POSITIVE_INT,
    "eval.log_num_test": NON_NEGATIVE_INT,
    "eval.frechet_num": NON_NEGATIVE_INT,
    "eval.classifier_steps": POSITIVE_INT,
}


def vae_config() -> ml_collections.ConfigDict:
    c = base_config()
    c.family = "vae"
    c.num_steps = 3000
    c.batch_size = 64
    c.log_every = 250
    c.checkpoint_every = 1000
    c.optimizer.lr = 1e-3

    c.data = ml_collections.ConfigDict()
    c.data.name = "digits"  # digits | cifar10 | celeb_a | toy
    c.data.source = "auto"  # digits: auto (MNIST if prepared, else fonts) | mnist | font
    c.data.data_dir = ""  # tensorflow-datasets folder ("" -> its default)
    c.data.num_font_digits = 0  # font digits per split (0 -> 20000 train / 5000 test)
    c.data.toy = "two_moons"  # data.name=toy: a generative.data.toy distribution
    c.data.binarize = True  # Bernoulli decoder: x ~ Bernoulli(grey level), redrawn per step

    c.model = ml_collections.ConfigDict()
    c.model.net = "conv"  # conv (DCGAN encoder/decoder) | mlp
    c.model.decoder = "bernoulli"  # bernoulli | gaussian
    c.model.sigma_mode = "learned"  # gaussian decoder: learned | fixed σ (one for all pixels)
    c.model.sigma = 0.1  # gaussian decoder: fixed σ, or the initial σ when learned
    c.model.latent_dim = 16
    c.model.hidden = 256  # conv: encoder code width before the μ / log σ² heads; mlp: width
    c.model.layers = 2  # mlp: hidden layers of the encoder and of the decoder
    c.model.nf = 32  # conv: channels of the first encoder layer

    c.eval = ml_collections.ConfigDict()
    c.eval.iwae_k = 100  # importance samples of the reported NLL
    c.eval.num_test = 500  # test examples of the final NLL
    c.eval.batch = 100  # test examples per evaluation batch
    c.eval.decode_chunk = 2000  # at most this many decoder evaluations at once
    c.eval.log_num_test = 500  # test ELBO on this many examples at every logging step
    c.eval.frechet_num = 1000  # samples for the classifier Fréchet distance (0: skip)
    c.eval.classifier_steps = 500  # training steps of the digit classifier (cached)
    c.eval.cache_dir = ""  # classifier cache ("" -> $GENERATIVE_CACHE_DIR or ~/.cache/generative)
    return c


def get_config():
    return vae_config()


def _toy_needs_mlp_gaussian(c):
    if c.data.name == "toy" and (c.model.net != "mlp" or c.model.decoder != "gaussian"):
        return (
            f"data.name=toy needs model.net=mlp and model.decoder=gaussian, got "
            f"model.net={c.model.net} model.decoder={c.model.decoder}"
        )
    return None


CROSS_CHECKS = (_toy_needs_mlp_gaussian,)
