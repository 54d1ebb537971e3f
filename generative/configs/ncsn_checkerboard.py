"""NCSN on the checkerboard: denoising score matching over a geometric σ ladder, annealed Langevin.

generative train --config ncsn_checkerboard --workdir runs/ncsn_checkerboard
"""

from generative.configs.ddpm_checkerboard import CHECKS, CROSS_CHECKS, diffusion_config  # noqa: F401


def get_config():
    c = diffusion_config()
    c.model.kind = "ncsn"
    c.eval.samplers = "langevin"
    return c
