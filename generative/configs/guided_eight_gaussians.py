"""Classifier guidance on the 8 Gaussians: VP score SDE plus a noise-conditional classifier of the mode.

generative train --config guided_eight_gaussians --workdir runs/guided_eight_gaussians
"""

from generative.configs.ddpm_checkerboard import CHECKS, CROSS_CHECKS, diffusion_config  # noqa: F401


def get_config():
    c = diffusion_config()
    c.data.toy = "eight_gaussians"
    c.model.kind = "sde"
    c.guidance.enabled = True
    c.eval.samplers = "em,ode"
    return c
