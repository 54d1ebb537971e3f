"""Reduced WaveEq run for a 2-core CPU (~30 min): full data, nets of width 256, batch 32, 8000 steps.

Launch: physics train --config waveeq_cpu --workdir runs/physics-waveeq-cpu
"Without S": add model.use_content=False (and another --workdir).
"""

from physics.configs._base import separation_config


def get_config():
    c = separation_config()
    c.batch_size = 32
    c.num_steps = 8000
    c.log_every, c.checkpoint_every = 250, 1000
    c.eval_stride = 50
    c.log_eval_windows = 32
    c.model.enc_hidden = 256
    c.model.dec_hidden = 256
    c.dynamics.hidden = 128
    c.loss.ae = 1.0
    c.optimizer.lr = 4e-4
    return c
