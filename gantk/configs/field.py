"""Paper Figs. 6-7: field −∇c of a discriminator trained on one fake vs the real (1, 0).

gantk field --config field:relu --workdir runs/field_relu
gantk field --config field:relu_nobias pad_dim=64 --workdir runs/field_relu_nobias_64d
gantk field --config field:rbf --workdir runs/field_rbf
"""

import ml_collections

from gantk.kernels import default_kernel_config
from generative.core.config import base_config

VARIANTS = ["relu", "relu_nobias", "rbf"]  # the discriminator architecture


def get_config(architecture: str) -> ml_collections.ConfigDict:
    c = base_config()
    for key in ("seed", "num_steps", "log_every", "checkpoint_every", "keep_checkpoints"):
        del c[key]  # deterministic, no training loop
    del c["optimizer"]  # infinite width: no optimizer
    c.dtype = "float32"  # float32 | float64
    c.kernel = default_kernel_config()
    c.kernel.architecture = architecture
    c.loss = ml_collections.ConfigDict()
    c.loss.name = "ipm"  # ipm | lsgan | vanilla | hinge
    c.loss.t = 1.0  # discriminator training time
    c.loss.generator_target = "zero"  # LSGAN generator loss: zero -> f², one -> (f − 1)²
    c.loss.method = "auto"  # dual solver (gantk.dynamics.METHODS)
    c.pad_dim = 0  # 0: the plane itself; D > 2: zero-pad the inputs to R^D
    c.field = ml_collections.ConfigDict()
    c.field.x_range = (-2.0, 2.0)
    c.field.y_range = (0.0, 2.0)
    c.field.nx = 21
    c.field.ny = 11
    c.field.real = (1.0, 0.0)  # the single real point
    return c
