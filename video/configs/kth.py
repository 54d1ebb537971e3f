"""KTH at the paper's settings (VGG, skips, 2 Euler steps, ν=0.2; 150k + 50k steps).

video train --config kth --workdir runs/kth data_dir=/path/to/kth_npy
(layout: video/data/datasets.py)
"""

from video.configs._base import srvp_config


def get_config():
    c = srvp_config("kth")
    c.seq_len, c.nt_cond, c.batch_size = 20, 10, 100
    c.num_steps, c.optimizer.decay_steps = 200_000, 50_000
    m = c.model
    m.ny = m.nz = 50
    m.nt_inf, m.archi, m.skipco, m.n_euler_steps = 3, "vgg", True, 2
    m.obs_scale, m.beta_z, m.res_gain = 0.2, 1.0, 1.2
    c.eval.num_videos, c.eval.horizon = 1000, 30
    return c
