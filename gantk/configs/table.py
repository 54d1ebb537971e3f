"""The paper's comparison grid: final Sinkhorn divergence, mean ± std over seeds.

gantk table --steps 2000 --seeds 3 --workers 2
"""

import ml_collections

from gantk.configs import paper


def get_config():
    c = ml_collections.ConfigDict()
    c.seed = 0  # first seed; seeds seed, seed + 1, ...
    c.steps = 2000
    c.seeds = 3
    c.workers = 2  # runs in parallel (processes)
    c.log_every = 500
    c.datasets = paper.DATASETS
    c.losses = paper.LOSSES
    c.kernels = paper.KERNELS
    return c
