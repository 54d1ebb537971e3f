"""TaxiBJ (32x32 in/out flows): VGG32 enc/dec, 4 -> 4 frames, lr 4e-5.

Needs <data_dir>/taxibj/{train,test}.npz (see physics/data.py).
Launch: physics train --config taxibj --workdir runs/physics-taxibj data_dir=/path/to/data
"""

from physics.configs._base import separation_config


def get_config():
    c = separation_config()
    c.dataset = "taxibj"
    c.cond_frames, c.pred_frames, c.eval_pred_frames = 4, 4, 4
    c.eval_stride = 1
    c.model.encoder = c.model.decoder = "vgg"
    c.model.content_dim, c.model.dynamic_dim = 128, 64
    c.model.mixing = "concat"
    c.model.output_activation = "none"
    c.optimizer.lr = 4e-5
    c.loss.ae, c.loss.s = 45.0, 1e-4
    c.dynamics.n_blocks = 1  # the reference's --n_blocks default (its command sets none here)
    c.num_steps = 100_000
    return c
