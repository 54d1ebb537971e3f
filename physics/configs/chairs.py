"""3D chairs (multi-view): 15 consecutive views, ResNet-18 encoder, DCGAN decoder, T size 10.

Needs <data_dir>/chairs/chairs.npz (see physics/data.py).
Launch: physics train --config chairs --workdir runs/physics-chairs data_dir=/path/to/data
"""

from physics.configs._base import separation_config


def get_config():
    c = separation_config()
    c.dataset = "chairs"
    c.cond_frames, c.pred_frames, c.eval_pred_frames = 5, 10, 10
    c.eval_stride = 1
    c.model.encoder, c.model.decoder = "resnet", "dcgan"
    c.model.content_dim, c.model.dynamic_dim = 128, 10
    c.model.mixing = "concat"
    c.loss.ae, c.loss.s = 1.0, 1.0
    c.dynamics.n_blocks = 1  # the reference's --n_blocks default (its command sets none here)
    c.num_steps = 100_000
    return c
