"""gan_grid with tiny networks and 4 steps: smoke tests and quick CPU checks (seconds).

generative train --config gan_grid_tiny --workdir /tmp/gan-grid-tiny
"""

from generative.configs.gan_grid import CHECKS, CROSS_CHECKS, gan_config, tiny  # noqa: F401


def get_config():
    return tiny(gan_config("grid"))
