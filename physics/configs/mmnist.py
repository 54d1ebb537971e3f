"""Moving MNIST (deterministic, 2 digits): DCGAN enc/dec, S 128 / T 20, 5 -> 10 frames, eval 10 and 95.

Launch: physics train --config mmnist --workdir runs/physics-mmnist
"""

from physics.configs._base import separation_config


def get_config():
    c = separation_config()
    c.dataset = "mmnist"
    c.digits_source = "auto"  # auto (MNIST if prepared under data_dir, else fonts) | mnist | font
    c.num_font_digits = 0  # 0: video's default count
    c.cond_frames, c.pred_frames, c.eval_pred_frames = 5, 10, 95
    c.eval_windows = 5000
    c.num_steps = 800 * 200_000 // 128
    c.model.encoder = c.model.decoder = "dcgan"
    c.model.content_dim, c.model.dynamic_dim = 128, 20
    c.model.mixing = "concat"
    c.optimizer.b1 = 0.5
    c.dynamics.n_blocks = 1  # the reference's --n_blocks default (its command sets none here)
    return c
