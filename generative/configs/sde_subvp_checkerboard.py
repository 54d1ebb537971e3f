"""sub-VP score SDE on the checkerboard: Euler–Maruyama, predictor–corrector, probability-flow ODE and its NLL.

generative train --config sde_subvp_checkerboard --workdir runs/sde_subvp_checkerboard
"""

from generative.configs.ddpm_checkerboard import CHECKS, CROSS_CHECKS, diffusion_config  # noqa: F401


def get_config():
    c = diffusion_config()
    c.model.kind = "sde"
    c.sde.name = "subvp"
    c.eval.samplers = "em,pc,ode"
    return c
