"""GAN on the 25-Gaussian grid with PacGAN's networks and optimiser (non-saturating loss).

generative train --config gan_grid --workdir /tmp/gan-grid
generative train --config gan_grid loss=hinge --workdir /tmp/hinge-grid

Generator: 4 hidden layers × 400 ReLU with batch norm, 2-D latent, linear 2-D output;
discriminator: maxout, 3 hidden layers of 200 units × 5 pieces; Adam 1e-4, β₁ 0.8, batch
100; 100 000 training points (PacGAN trained 400 epochs = 400 000 steps; this preset runs
20 000). `loss` chooses the GAN loss; the WGAN, WGAN-GP and LSGAN presets set the settings
that go with theirs (gan_grid_wgan, gan_grid_wgangp, gan_grid_lsgan, gan_grid_hinge).
This module also holds the settings and value checks shared by the gan_* and ali_* presets.
"""

import ml_collections

from generative.core.config import (
    FINITE,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    base_config,
    each,
    one_of,
)

LOSSES = ("minimax", "non_saturating", "lsgan", "wgan", "wgan_gp", "hinge")  # generative.gan
TOY_DATA = (
    "grid",
    "ring",
    "eight_gaussians",
    "twenty_five_gaussians",
    "two_moons",
    "checkerboard",
    "swiss_roll",
    "standard_normal",
)
DATA = TOY_DATA + ("digits",)
# data with labels for conditional models: the digit, or the mixture component
LABELLED_DATA = ("digits", "grid", "ring", "eight_gaussians", "twenty_five_gaussians")


def adversarial_config(family: str, data: str) -> ml_collections.ConfigDict:
    """Keys shared by the GAN and ALI presets (2-D data: PacGAN's settings)."""
    c = base_config()
    c.family = family
    c.num_steps = 20000
    c.log_every = 500
    c.checkpoint_every = 5000
    c.batch_size = 100
    c.conditional = False  # class-conditioned networks (digits: the digit; mixtures: the mode)
    c.optimizer.lr = 1e-4
    c.optimizer.b1 = 0.8
    c.optimizer.b2 = 0.999

    c.data = ml_collections.ConfigDict()
    c.data.name = data
    c.data.train_size = 100000  # 2-D: size of the fixed training set; 0: fresh samples
    c.data.seed = 0  # seed of the training set (the same points for every run seed)
    c.data.source = "auto"  # digits: auto | mnist | font
    c.data.data_dir = ""  # digits: tensorflow-datasets folder ("" -> default)
    c.data.num_font_digits = 20000  # digits: offline font digits when MNIST is absent

    c.model = ml_collections.ConfigDict()
    c.model.kind = "mlp"  # mlp (2-D) | dcgan (digits)
    c.model.latent_dim = 2
    c.model.g_hidden = (400, 400, 400, 400)
    c.model.g_norm = "batch"  # mlp: batch | none; dcgan: batch | group
    c.model.d_hidden = (200, 200, 200)
    c.model.d_pieces = 5  # maxout pieces
    c.model.nf = 64  # dcgan width
    c.model.d_norm = "batch"  # dcgan discriminator: batch | group

    c.eval = ml_collections.ConfigDict()
    c.eval.num_samples = 2500  # samples of the final evaluation
    c.eval.distance_samples = 2000  # of them, compared with as many data points
    c.eval.snapshot_samples = 500  # samples per logging step (metrics and GIF frame)
    c.eval.sinkhorn_epsilon = 0.1
    return c


def image_config(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """DCGAN settings for 28×28 digits on top of `adversarial_config`."""
    c.data.name = "digits"
    c.num_steps = 10000
    c.batch_size = 64
    c.optimizer.lr = 2e-4
    c.optimizer.b1 = 0.5
    c.model.kind = "dcgan"
    c.model.latent_dim = 64
    c.model.nf = 32
    c.eval.num_samples = 500
    c.eval.distance_samples = 500
    c.eval.snapshot_samples = 32
    return c


def gan_config(data: str = "grid") -> ml_collections.ConfigDict:
    c = adversarial_config("gan", data)
    c.loss = "non_saturating"  # minimax | non_saturating | lsgan | wgan | wgan_gp | hinge
    c.lsgan_labels = (0.0, 1.0, 1.0)  # (a, b, c): fake label, real label, generator target
    c.n_critic = 1  # discriminator updates per generator update
    c.clip = 0.0  # WGAN weight clipping c (0: none)
    c.gp_weight = 10.0  # WGAN-GP λ
    return c


def tiny(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Seconds-long variant of a preset: small networks, few steps (tests, quick checks)."""
    c.num_steps, c.log_every, c.checkpoint_every = 4, 2, 4
    c.progress = False
    c.batch_size = 8
    c.data.train_size = 64
    c.data.num_font_digits = 200
    c.model.g_hidden = (8, 8)
    c.model.d_hidden = (8, 8)
    c.model.d_pieces = 2
    c.model.nf = 4
    c.model.latent_dim = min(c.model.latent_dim, 4)
    c.eval.num_samples = 64
    c.eval.distance_samples = 64
    c.eval.snapshot_samples = 16
    return c


def get_config():
    return gan_config("grid")


def _clip_needs_wgan(c):
    if c.clip > 0 and c.loss != "wgan":
        return f"clip ({c.clip}) applies to loss=wgan only, got loss={c.loss}"
    return None


def _kind_fits_data(c):
    image = c.data.name == "digits"
    if image != (c.model.kind == "dcgan"):
        return (
            f"model.kind={c.model.kind} does not fit data.name={c.data.name}: "
            "dcgan for digits, mlp for 2-D data"
        )
    return None


def _conditional_needs_labels(c):
    if c.conditional and c.data.name not in LABELLED_DATA:
        return f"conditional=True needs labelled data (digits or a mixture), got {c.data.name}"
    return None


def _g_norm_fits_kind(c):
    valid = ("batch", "none") if c.model.kind == "mlp" else ("batch", "group")
    if c.model.g_norm not in valid:
        return f"model.g_norm must be one of {', '.join(valid)} for model.kind={c.model.kind}"
    return None


CHECKS = {
    "family": one_of("gan", "ali"),
    "loss": one_of(*LOSSES),
    "lsgan_labels": each(FINITE, min_len=3),
    "n_critic": POSITIVE_INT,
    "clip": NON_NEGATIVE,
    "gp_weight": NON_NEGATIVE,
    "batch_size": POSITIVE_INT,
    "conditional": one_of(True, False),
    "optimizer.name": one_of("adam", "rmsprop"),
    "optimizer.schedule": one_of("constant"),
    "optimizer.grad_clip": one_of(0.0, 0),
    "data.name": one_of(*DATA),
    "data.train_size": NON_NEGATIVE_INT,
    "data.seed": NON_NEGATIVE_INT,
    "data.source": one_of("auto", "mnist", "font"),
    "data.num_font_digits": POSITIVE_INT,
    "model.kind": one_of("mlp", "dcgan"),
    "model.latent_dim": POSITIVE_INT,
    "model.g_hidden": each(POSITIVE_INT),
    "model.d_hidden": each(POSITIVE_INT),
    "model.d_pieces": POSITIVE_INT,
    "model.nf": POSITIVE_INT,
    "model.g_norm": one_of("batch", "group", "none"),
    "model.d_norm": one_of("batch", "group"),
    "eval.num_samples": POSITIVE_INT,
    "eval.distance_samples": POSITIVE_INT,
    "eval.snapshot_samples": POSITIVE_INT,
    "eval.sinkhorn_epsilon": POSITIVE,
}
CROSS_CHECKS = (_clip_needs_wgan, _kind_fits_data, _conditional_needs_labels, _g_norm_fits_kind)
