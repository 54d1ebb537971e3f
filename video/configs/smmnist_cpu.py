"""Stochastic Moving MNIST, the reduced run of the README (about an hour on this 2-core CPU).

video train --config smmnist_cpu
video eval --config smmnist_cpu
`smmnist_tiny` (10-frame clips, lr 1e-3, ν = 0.2, 256 test videos) made wider and longer:
DCGAN nf=16 (a quarter of the paper's width), 256-wide inference/dynamics MLPs, batch 16,
8000 steps (6500 + 1500 linear decay); evaluated as the paper (5 → 25 frames, best of 100
samples per video and metric, predicted frames only), next to the repeat-last-frame and
black-frame baselines.
"""

from video.configs import smmnist_tiny


def get_config():
    c = smmnist_tiny.get_config()
    c.batch_size = 16
    c.num_steps = 8000
    c.optimizer.decay_steps = 1500
    c.checkpoint_every = 1000
    c.model.nf = 16
    c.model.nh_inf = 256
    c.model.nh_res = 256
    c.eval.n_samples = 100
    return c
