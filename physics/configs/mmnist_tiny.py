"""Moving MNIST with tiny DCGAN nets (nf 4), 2 -> 2 frames: smoke tests only.

Launch: physics train --config mmnist_tiny --workdir /tmp/physics-mmnist-tiny
"""

from physics.configs import mmnist


def get_config():
    c = mmnist.get_config()
    c.cond_frames, c.pred_frames, c.eval_pred_frames = 2, 2, 3
    c.eval_windows, c.eval_batch, c.log_eval_windows = 2, 2, 0
    c.batch_size = 4  # divisible by the 4 simulated test devices
    c.num_steps, c.log_every, c.checkpoint_every = 1, 1, 1
    c.progress = False
    c.digits_source, c.num_font_digits = "font", 20
    c.model.nf = 4
    c.model.content_dim, c.model.dynamic_dim = 8, 4
    c.dynamics.hidden = 8
    c.dynamics.n_blocks = 1
    return c
