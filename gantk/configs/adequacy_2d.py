"""Paper Fig. 1 (2-D): c(f_t) of an SGD-trained width-512 discriminator vs ∞, 30 points.

gantk adequacy --config adequacy_2d --workdir runs/adequacy_2d
"""

import ml_collections

from gantk.configs import adequacy_1d


def get_config() -> ml_collections.ConfigDict:
    c = adequacy_1d.get_config()
    c.widths = (512,)
    c.data.dim = 2
    c.data.n_fake = 15
    c.data.n_real = 15
    c.plot.extent = 2.5
    c.plot.grid_size = 61
    return c
