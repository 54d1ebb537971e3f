"""Tiny VP score SDE on the checkerboard: smoke tests.

generative train --config sde_vp_checkerboard_tiny --workdir runs/sde_vp_checkerboard_tiny
"""

from generative.configs.ddpm_checkerboard import CHECKS, CROSS_CHECKS, diffusion_config  # noqa: F401


def get_config():
    c = diffusion_config()
    c.num_steps, c.log_every, c.checkpoint_every = 20, 10, 20
    c.batch_size = 64
    c.progress = False
    c.eval.sinkhorn = False
    c.optimizer.warmup_steps = 5
    c.model.kind = "sde"
    c.model.hidden, c.model.layers, c.model.embed_dim = 32, 2, 16
    c.sample.steps, c.sample.pc_steps = 20, 10
    c.sample.ode_rtol = c.sample.ode_atol = 1e-2
    c.eval.samplers = "em,pc,ode"
    c.eval.num_samples = c.eval.num_test = 200
    c.eval.nll_num, c.eval.nll_batch = 50, 50
    c.eval.nll_rtol = c.eval.nll_atol = 1e-3
    c.eval.gif_frames, c.eval.gif_samples = 4, 100
    return c
