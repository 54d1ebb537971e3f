"""WaveEq on a 16x16 grid with tiny nets: smoke tests and quick CPU checks (seconds).

Launch: physics train --config waveeq_tiny --workdir /tmp/physics-tiny
"""

from physics.configs._base import separation_config


def get_config():
    c = separation_config()
    c.num_sequences, c.num_train, c.grid_size, c.sim_frames = 6, 4, 16, 60
    c.cond_frames, c.pred_frames, c.eval_pred_frames = 3, 4, 6
    c.eval_stride, c.eval_windows, c.eval_batch, c.log_eval_windows = 10, 4, 4, 4
    c.batch_size = 4
    c.num_steps, c.log_every, c.checkpoint_every = 2, 1, 1
    c.progress = False
    c.model.content_dim = c.model.dynamic_dim = 4
    c.model.enc_hidden = c.model.dec_hidden = 16
    c.dynamics.hidden = 16
    c.dynamics.n_blocks = 1
    c.loss.ae = 1.0
    return c
