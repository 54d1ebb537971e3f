"""Tiny classifier-guidance run on the 8 Gaussians: smoke tests.

generative train --config guided_eight_gaussians_tiny --workdir runs/guided_eight_gaussians_tiny
"""

from generative.configs.ddpm_checkerboard import CHECKS, CROSS_CHECKS, diffusion_config  # noqa: F401


def get_config():
    c = diffusion_config()
    c.num_steps, c.log_every, c.checkpoint_every = 20, 10, 20
    c.batch_size = 64
    c.progress = False
    c.eval.sinkhorn = False
    c.optimizer.warmup_steps = 5
    c.data.toy = "eight_gaussians"
    c.model.kind = "sde"
    c.model.hidden, c.model.layers, c.model.embed_dim = 32, 2, 16
    c.guidance.enabled = True
    c.guidance.hidden, c.guidance.layers = 16, 1
    c.guidance.scales = (0.0, 4.0)
    c.sample.steps = 20
    c.eval.samplers = "em"
    c.eval.num_samples = c.eval.num_test = 200
    c.eval.nll_num = 0
    c.eval.gif_frames = 0
    c.eval.guided_per_class = 10
    return c
