"""Stochastic Moving MNIST, the reduced run of the README (about an hour on this 2-core CPU).

video train --config smmnist_cpu
video eval --config smmnist_cpu
DCGAN nf=16 (a quarter of the paper's width), 256-wide inference/dynamics MLPs, batch 16,
10-frame training clips (5 conditioning), 8000 steps (6500 + 1500 linear decay), lr 1e-3,
ν = 0.2 (see `smmnist_tiny`); evaluated as the paper (5 → 25 frames, best of 100 samples per
video and metric, predicted frames only) on 256 test videos, next to the repeat-last-frame
and black-frame baselines.
"""

from video.configs._base import srvp_config


def get_config():
    c = srvp_config("smmnist")
    c.batch_size = 16
    c.seq_len = 10
    c.num_steps = 8000
    c.optimizer.lr = 1e-3
    c.optimizer.decay_steps = 1500
    c.log_every = 100
    c.checkpoint_every = 1000
    c.model.obs_scale = 0.2
    c.model.nf = 16
    c.model.nh_inf = 256
    c.model.nh_res = 256
    c.eval.num_videos = 256
    c.eval.n_samples = 100
    c.eval.batch_size = 16
    c.eval.at_end = True
    c.eval.log_videos = 0
    return c
