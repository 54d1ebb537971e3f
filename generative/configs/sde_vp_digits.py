"""VP score SDE on 28×28 digits (small U-Net): probability-flow samples and bits/dim.

generative train --config sde_vp_digits --workdir runs/sde_vp_digits
"""

from generative.configs import ddpm_digits
from generative.configs.ddpm_checkerboard import CHECKS, CROSS_CHECKS  # noqa: F401


def get_config():
    c = ddpm_digits.get_config()  # same data, U-Net, budget and evaluation sizes
    c.model.kind = "sde"
    c.eval.samplers = "ode,em"
    return c
