"""SST (NEMO, 64x64 patches, zones 17-20 test): conv enc/dec with skips, S 196 / T 64 maps at 16x16.

Needs <data_dir>/sst/zone_01.npy ... zone_20.npy (see physics/data.py).
Launch: physics train --config sst --workdir runs/physics-sst data_dir=/path/to/data
"""

from physics.configs._base import separation_config


def get_config():
    c = separation_config()
    c.dataset = "sst"
    c.cond_frames, c.pred_frames, c.eval_pred_frames = 4, 6, 6
    c.eval_stride = 1
    c.model.encoder = c.model.decoder = "conv_skip"
    c.model.content_dim, c.model.dynamic_dim = 196, 64
    c.model.mixing = "concat"
    c.dynamics.n_blocks = 2
    c.dynamics.hidden = 128
    c.loss.ae, c.loss.s, c.loss.t = 1.0, 100.0, 5e-6
    c.num_steps = 100_000
    return c
