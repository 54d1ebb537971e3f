"""Tiny flow on the checkerboard (a few steps): smoke tests and quick CPU checks (seconds).

generative train --config flow_realnvp_tiny --workdir /tmp/flow-tiny
generative train --config flow_realnvp_tiny --workdir /tmp/cnf-tiny model.kind=cnf

Any `model.kind` works with it (nice, realnvp, maf, resflow, cnf).
"""

from generative.configs.flow_realnvp_checkerboard import CHECKS, CROSS_CHECKS, flow_config  # noqa: F401


def get_config():
    c = flow_config("realnvp")
    c.num_steps, c.log_every, c.checkpoint_every = 20, 10, 20
    c.batch_size = 64
    c.progress = False
    c.model.layers = 2
    c.model.hidden = (16,)
    c.model.rtol = c.model.atol = 1e-3
    c.eval.num_test = 256
    c.eval.batch = 256
    c.eval.log_num_test = 128
    c.eval.num_samples = 128
    c.eval.grid = 40
    c.eval.rtol = c.eval.atol = 1e-4
    c.eval.gif_frames = 3
    return c
