"""Least-squares GAN on the 25-Gaussian grid, labels (a, b, c) = (0, 1, 1).

generative train --config gan_grid_lsgan --workdir /tmp/lsgan-grid
generative train --config gan_grid_lsgan "lsgan_labels=(-1, 1, 0)" --workdir /tmp/lsgan2

L_D = E (D(x) − b)² + E (D(G(z)) − a)², L_G = E (D(G(z)) − c)²; PacGAN's networks and optimiser.
"""

from generative.configs.gan_grid import CHECKS, CROSS_CHECKS, gan_config  # noqa: F401


def get_config():
    c = gan_config("grid")
    c.loss = "lsgan"
    c.lsgan_labels = (0.0, 1.0, 1.0)
    return c
