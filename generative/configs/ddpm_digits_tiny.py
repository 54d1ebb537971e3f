"""Tiny DDPM on a few hundred font digits: smoke tests.

generative train --config ddpm_digits_tiny --workdir runs/ddpm_digits_tiny
"""

from generative.configs.ddpm_checkerboard import CHECKS, CROSS_CHECKS, diffusion_config  # noqa: F401


def get_config():
    c = diffusion_config()
    c.num_steps, c.log_every, c.checkpoint_every = 4, 2, 4
    c.batch_size = 8
    c.progress = False
    c.optimizer.warmup_steps = 1
    c.data.name = "digits"
    c.data.source = "font"
    c.data.num_font_digits = 64
    c.model.net = "unet"
    c.model.nf, c.model.groups = 8, 4
    c.ddpm.num_timesteps = 20
    c.eval.samplers = "ancestral"
    c.eval.num_samples = 8
    c.eval.nll_num, c.eval.nll_batch = 4, 4
    c.eval.nll_rtol = c.eval.nll_atol = 1e-2
    c.eval.gif_frames, c.eval.gif_samples = 2, 8
    return c
