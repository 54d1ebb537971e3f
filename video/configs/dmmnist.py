"""Deterministic Moving MNIST at the paper's settings (800k + 100k steps; eval 5→100, 1 sample).

video train --config dmmnist --workdir runs/dmmnist
"""

from video.configs._base import srvp_config


def get_config():
    c = srvp_config("dmmnist")
    c.num_steps = 900_000
    c.optimizer.decay_steps = 100_000
    c.eval.horizon = 95
    c.eval.n_samples = 1
    return c
