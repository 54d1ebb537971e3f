"""ali_grid with tiny networks and 4 steps: smoke tests and quick CPU checks (seconds).

generative train --config ali_grid_tiny --workdir /tmp/ali-grid-tiny
"""

from generative.configs.ali_grid import CHECKS, CROSS_CHECKS, ali_config, tiny_ali  # noqa: F401


def get_config():
    return tiny_ali(ali_config("grid"))
