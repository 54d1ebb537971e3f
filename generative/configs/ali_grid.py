"""ALI on the 25-Gaussian grid with PacGAN-sized networks and optimiser.

generative train --config ali_grid --workdir /tmp/ali-grid

Encoder and decoder: 4 hidden layers × 400 ReLU with batch norm, 2-D latent (the encoder
outputs μ and σ); discriminator D(x, z): one maxout layer of 200 units × 5 pieces on x and
one on z, then two joint maxout layers and a linear logit. Adam 1e-4, β₁ 0.8, batch 100,
100 000 training points.
"""

import ml_collections

from generative.configs.gan_grid import CHECKS as GAN_CHECKS
from generative.configs.gan_grid import CROSS_CHECKS as GAN_CROSS_CHECKS
from generative.configs.gan_grid import adversarial_config, image_config
from generative.core.config import POSITIVE_INT, each


def ali_config(data: str = "grid") -> ml_collections.ConfigDict:
    c = adversarial_config("ali", data)
    c.model.x_hidden = (200,)  # discriminator x-branch (maxout; digits: DCGAN feature width)
    c.model.z_hidden = (200,)  # discriminator z-branch (maxout)
    c.model.d_hidden = (200, 200)  # joint maxout layers before the logit
    return c


def ali_image_config(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    image_config(c)
    c.model.x_hidden = (256,)
    c.model.z_hidden = (256,)
    c.model.d_hidden = (256,)
    c.model.d_pieces = 2
    return c


def tiny_ali(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    from generative.configs.gan_grid import tiny

    tiny(c)
    c.model.x_hidden = c.model.z_hidden = (8,)
    return c


def get_config():
    return ali_config("grid")


CHECKS = {
    **{k: v for k, v in GAN_CHECKS.items() if k not in ("loss", "n_critic", "clip", "gp_weight")},
    "model.x_hidden": each(POSITIVE_INT),
    "model.z_hidden": each(POSITIVE_INT),
}
CROSS_CHECKS = tuple(c for c in GAN_CROSS_CHECKS if c.__name__ != "_clip_needs_wgan")
