"""Stochastic Moving MNIST, reduced to train on a 2-core CPU in about 20 minutes.

video train --config smmnist_tiny --workdir runs/smmnist_tiny
Narrow DCGAN (nf=16), batch 16, 4000 steps (3000 + 1000 decay), lr 1e-3; evaluated on 256 test
videos, 5→25, best of 20 samples, next to the repeat-last-frame baseline.
"""

from video.configs._base import srvp_config


def get_config():
    c = srvp_config("smmnist")
    c.batch_size = 16
    c.num_steps = 4000
    c.optimizer.lr = 1e-3
    c.optimizer.decay_steps = 1000
    c.log_every = 250
    c.checkpoint_every = 1000
    c.model.nf = 16
    c.model.nh_inf = 128
    c.model.nh_res = 128
    c.eval.num_videos = 256
    c.eval.n_samples = 20
    c.eval.batch_size = 16
    c.eval.at_end = True
    c.eval.log_videos = 32
    return c
