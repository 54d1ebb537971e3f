"""BAIR robot pushing at the paper's settings (VGG, skips, ν=0.71; 1M + 500k steps, batch 192).

video train --config bair --workdir runs/bair data_dir=/path/to/tensorflow_datasets
(needs `tfds build bair_robot_pushing_small` done beforehand)
"""

from video.configs._base import srvp_config


def get_config():
    c = srvp_config("bair")
    c.seq_len, c.nt_cond, c.batch_size = 12, 2, 192
    c.num_steps, c.optimizer.decay_steps = 1_500_000, 500_000
    m = c.model
    m.nc, m.ny, m.nz = 3, 50, 50
    m.nt_inf, m.archi, m.skipco, m.n_euler_steps = 2, "vgg", True, 2
    m.obs_scale, m.beta_z, m.res_gain = 0.71, 1.0, 1.41
    c.eval.num_videos, c.eval.horizon = 256, 28
    return c
