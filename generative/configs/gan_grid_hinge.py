"""Hinge-loss GAN on the 25-Gaussian grid: L_D = E relu(1 − D(x)) + E relu(1 + D(G(z))).

generative train --config gan_grid_hinge --workdir /tmp/hinge-grid

L_G = −E D(G(z)); PacGAN's networks and optimiser.
"""

from generative.configs.gan_grid import CHECKS, CROSS_CHECKS, gan_config  # noqa: F401


def get_config():
    c = gan_config("grid")
    c.loss = "hinge"
    return c
