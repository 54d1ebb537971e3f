"""VQ-VAE on 28×28 digits: 7×7 grid of 16-d codes, K = 64, EMA codebook (γ = 0.99), β = 0.25.

generative train --config vqvae_digits --workdir runs/vqvae_digits
generative train --config vqvae_digits model.codebook_update=loss --workdir runs/vqvae_digits_loss

`model.codebook_update=loss` trains the codebook by the codebook loss ‖sg[z_e] − e‖² instead of the
exponential moving average. The other VQ-VAE presets start from `vqvae_config()` and share
`CHECKS`.
"""

import ml_collections

from generative.core.config import (
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    base_config,
    interval,
    one_of,
)

DATASETS = ("digits", "cifar10")  # generative.vqvae.DATASETS
UPDATES = ("ema", "loss")  # generative.vqvae.UPDATES
CODEBOOK_INITS = ("data", "normal")  # generative.vqvae.CODEBOOK_INITS

CHECKS = {
    "family": one_of("vqvae"),
    "batch_size": POSITIVE_INT,
    "data.name": one_of(*DATASETS),
    "data.source": one_of("auto", "mnist", "font"),
    "data.num_font_digits": NON_NEGATIVE_INT,
    "model.codebook_update": one_of(*UPDATES),
    "model.num_codes": POSITIVE_INT,
    "model.embed_dim": POSITIVE_INT,
    "model.nf": POSITIVE_INT,
    "model.num_residual": NON_NEGATIVE_INT,
    "model.beta": POSITIVE,
    "model.decay": interval(0, 1, high_open=True),
    "model.epsilon": POSITIVE,
    "model.codebook_init": one_of(*CODEBOOK_INITS),
    "model.init_images": POSITIVE_INT,
    "eval.num_test": POSITIVE_INT,
    "eval.batch": POSITIVE_INT,
    "eval.log_num_test": NON_NEGATIVE_INT,
    "eval.frechet_num": NON_NEGATIVE_INT,
    "eval.classifier_steps": POSITIVE_INT,
}


def vqvae_config() -> ml_collections.ConfigDict:
    c = base_config()
    c.family = "vqvae"
    c.num_steps = 3000
    c.batch_size = 64
    c.log_every = 250
    c.checkpoint_every = 1000
    c.optimizer.lr = 1e-3

    c.data = ml_collections.ConfigDict()
    c.data.name = "digits"  # digits | cifar10
    c.data.source = "auto"  # digits: auto (MNIST if prepared, else fonts) | mnist | font
    c.data.data_dir = ""  # tensorflow-datasets folder ("" -> its default)
    c.data.num_font_digits = 0  # font digits per split (0 -> 20000 train / 5000 test)

    c.model = ml_collections.ConfigDict()
    c.model.codebook_update = "ema"  # ema (moving averages) | loss (codebook loss ‖sg[z_e] − e‖²)
    c.model.num_codes = 64  # K
    c.model.embed_dim = 16  # D
    c.model.nf = 32  # encoder/decoder channels (2·nf at the code grid)
    c.model.num_residual = 1  # residual blocks in the encoder and in the decoder
    c.model.beta = 0.25  # commitment weight
    c.model.decay = 0.99  # EMA decay γ
    c.model.epsilon = 1e-5  # Laplace smoothing of the EMA cluster sizes
    c.model.codebook_init = "data"  # data (encoder outputs of training images) | normal
    c.model.init_images = 64  # data init: codes drawn from the grids of this many images

    c.eval = ml_collections.ConfigDict()
    c.eval.num_test = 1000  # test images of the final metrics
    c.eval.batch = 250
    c.eval.log_num_test = 500  # test reconstruction error at every logging step
    c.eval.frechet_num = 1000  # reconstructions for the classifier Fréchet distance (0: skip)
    c.eval.classifier_steps = 500  # training steps of the digit classifier (cached)
    c.eval.cache_dir = ""  # classifier cache ("" -> $GENERATIVE_CACHE_DIR or ~/.cache/generative)
    return c


def get_config():
    return vqvae_config()
