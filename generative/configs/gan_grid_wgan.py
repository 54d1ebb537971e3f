"""WGAN with weight clipping on the 25-Gaussian grid (Arjovsky et al.'s defaults).

generative train --config gan_grid_wgan --workdir /tmp/wgan-grid

RMSProp (lr 5e-5, decay 0.99), clipping c = 0.01, n_critic = 5 critic updates per generator
update, batch 64; PacGAN's networks.
"""

from generative.configs.gan_grid import CHECKS, CROSS_CHECKS, gan_config  # noqa: F401


def get_config():
    c = gan_config("grid")
    c.loss = "wgan"
    c.clip = 0.01
    c.n_critic = 5
    c.batch_size = 64
    c.optimizer.name = "rmsprop"
    c.optimizer.lr = 5e-5
    return c
