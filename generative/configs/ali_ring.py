"""ALI on the 8-Gaussian ring (unit circle, σ 0.01), networks and optimiser of ali_grid.

generative train --config ali_ring --workdir /tmp/ali-ring
"""

from generative.configs.ali_grid import CHECKS, CROSS_CHECKS, ali_config  # noqa: F401


def get_config():
    return ali_config("ring")
