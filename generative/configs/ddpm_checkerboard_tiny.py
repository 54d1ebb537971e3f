"""Tiny DDPM on the checkerboard: smoke tests (a few steps, small samples).

generative train --config ddpm_checkerboard_tiny --workdir runs/ddpm_checkerboard_tiny
"""

from generative.configs.ddpm_checkerboard import CHECKS, CROSS_CHECKS, diffusion_config  # noqa: F401


def get_config():
    c = diffusion_config()
    c.num_steps, c.log_every, c.checkpoint_every = 20, 10, 20
    c.batch_size = 64
    c.progress = False
    c.eval.sinkhorn = False
    c.optimizer.schedule, c.optimizer.grad_clip = "constant", 0.0
    c.model.hidden, c.model.layers, c.model.embed_dim = 32, 2, 16
    c.ddpm.num_timesteps = 100
    c.eval.samplers = "ancestral"
    c.sample.ode_rtol = c.sample.ode_atol = 1e-2
    c.eval.num_samples = c.eval.num_test = 200
    c.eval.nll_num = 0  # (the likelihood table measures it)
    c.eval.nll_rtol = c.eval.nll_atol = 1e-3
    c.eval.gif_frames, c.eval.gif_samples, c.eval.gif_sampler = 2, 100, "ancestral"
    return c
