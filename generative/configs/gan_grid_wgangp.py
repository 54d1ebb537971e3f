"""WGAN-GP on the 25-Gaussian grid: gradient penalty λ = 10 on random interpolates.

generative train --config gan_grid_wgangp --workdir /tmp/wgangp-grid

Gulrajani et al.'s settings: n_critic = 5, Adam 1e-4 with β₁ 0.5, β₂ 0.9; PacGAN's networks
(the generator keeps its batch norm, the critic has none).
"""

from generative.configs.gan_grid import CHECKS, CROSS_CHECKS, gan_config  # noqa: F401


def get_config():
    c = gan_config("grid")
    c.loss = "wgan_gp"
    c.gp_weight = 10.0
    c.n_critic = 5
    c.optimizer.b1 = 0.5
    c.optimizer.b2 = 0.9
    return c
