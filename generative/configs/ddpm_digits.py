"""DDPM on 28×28 digits (small U-Net), samples by ancestral sampling, bits/dim by the ODE.

generative train --config ddpm_digits --workdir runs/ddpm_digits
"""

from generative.configs.ddpm_checkerboard import CHECKS, CROSS_CHECKS, diffusion_config  # noqa: F401


def get_config():
    c = diffusion_config()
    c.num_steps, c.log_every, c.checkpoint_every = 800, 100, 400
    c.batch_size = 32
    c.optimizer.lr = 2e-4
    c.optimizer.warmup_steps = 50
    c.data.name = "digits"
    c.model.net = "unet"
    c.eval.samplers = "ancestral,ode"
    c.eval.num_samples = 64
    c.eval.nll_num, c.eval.nll_batch = 64, 32
    c.eval.nll_rtol = c.eval.nll_atol = 1e-3
    c.eval.gif_frames, c.eval.gif_samples = 20, 64
    return c
