"""GAN on the 8-Gaussian ring (unit circle, σ 0.01) with PacGAN's networks and optimiser.

generative train --config gan_ring --workdir /tmp/gan-ring
"""

from generative.configs.gan_grid import CHECKS, CROSS_CHECKS, gan_config  # noqa: F401


def get_config():
    return gan_config("ring")
