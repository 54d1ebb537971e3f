"""Stochastic Moving MNIST at the paper's settings (1M + 100k steps, batch 128).

video train --config smmnist --workdir runs/smmnist
video eval --config smmnist --workdir runs/smmnist
Ablations: model.dynamics=gru | model.dynamics=mlp | model.stochastic=False.
"""

from video.configs._base import srvp_config


def get_config():
    return srvp_config("smmnist")
