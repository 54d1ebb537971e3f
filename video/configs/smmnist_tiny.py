"""Stochastic Moving MNIST, reduced to train on a shared 2-core CPU (≈ 25 CPU-minutes).

video train --config smmnist_tiny --workdir runs/smmnist_tiny
Narrow DCGAN (nf=8), batch 8, 10-frame training clips, 1500 steps (1200 + 300 decay), lr 1e-3;
evaluated on 256 test videos, 5→25, best of 20 samples, next to the repeat-last-frame baseline.
"""

from video.configs._base import srvp_config


def get_config():
    c = srvp_config("smmnist")
    c.batch_size = 8
    c.seq_len = 10
    c.num_steps = 1500
    c.optimizer.lr = 1e-3
    c.optimizer.decay_steps = 300
    c.log_every = 50
    c.checkpoint_every = 250
    c.model.nf = 8
    c.model.nh_inf = 128
    c.model.nh_res = 128
    c.eval.num_videos = 256
    c.eval.n_samples = 20
    c.eval.batch_size = 16
    c.eval.at_end = True
    c.eval.log_videos = 0
    return c
