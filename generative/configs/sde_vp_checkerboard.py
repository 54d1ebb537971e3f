"""VP score SDE (β 0.1 → 20) on the checkerboard: Euler–Maruyama, predictor–corrector, probability-flow ODE and its NLL.

generative train --config sde_vp_checkerboard --workdir runs/sde_vp_checkerboard
"""

from generative.configs.ddpm_checkerboard import CHECKS, CROSS_CHECKS, diffusion_config  # noqa: F401


def get_config():
    c = diffusion_config()
    c.model.kind = "sde"
    c.sde.name = "vp"
    c.eval.samplers = "em,pc,ode"
    return c
