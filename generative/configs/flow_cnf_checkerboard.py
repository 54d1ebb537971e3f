"""Continuous normalizing flow (FFJORD: Hutchinson trace, adjoint gradients) on the 2-D
checkerboard.

generative train --config flow_cnf_checkerboard --workdir runs/flow_cnf_checkerboard

The field is an MLP of (x, t) with tanh; dopri5 at rtol = atol = 1e-5 (FFJORD's toy
settings), gradients by diffrax.BacksolveAdjoint. The reported NLL uses the exact divergence;
flow.gif shows noise carried to the data along the ODE time.
"""

from generative.configs.flow_realnvp_checkerboard import CHECKS, CROSS_CHECKS, flow_config  # noqa: F401


def get_config():
    c = flow_config("cnf")
    c.num_steps, c.log_every, c.checkpoint_every = 4000, 500, 1000
    c.model.hidden = (64, 64, 64)
    c.model.activation = "tanh"
    c.batch_size = 256
    return c
