"""Human3.6M at the paper's settings (VGG, skips, RGB, frame stride 8; 325k + 25k steps).

video train --config human --workdir runs/human data_dir=/path/to/human36m_npy
(layout: video/data/datasets.py)
"""

from video.configs._base import srvp_config


def get_config():
    c = srvp_config("human")
    c.seq_len, c.nt_cond, c.batch_size, c.frame_stride = 16, 8, 100, 8
    c.num_steps, c.optimizer.decay_steps = 350_000, 25_000
    m = c.model
    m.nc, m.ny, m.nz = 3, 50, 50
    m.nt_inf, m.archi, m.skipco, m.n_euler_steps = 3, "vgg", True, 2
    m.obs_scale, m.beta_z, m.res_gain = 0.2, 1.0, 1.2
    c.eval.num_videos, c.eval.horizon = 1000, 45
    return c
