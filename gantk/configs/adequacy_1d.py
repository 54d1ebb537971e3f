"""Paper Fig. 1 (1-D): c(f_t) of SGD-trained widths 64/128/256/512 against infinite width.

gantk adequacy --config adequacy_1d --workdir runs/adequacy_1d
"""

import ml_collections

from gantk.kernels import default_kernel_config
from generative.core.config import base_config


def get_config() -> ml_collections.ConfigDict:
    c = base_config()
    for key in ("num_steps", "log_every", "checkpoint_every", "keep_checkpoints"):
        del c[key]  # not a training loop: one discriminator training per width and seed
    for key in ("b1", "b2", "weight_decay", "schedule", "decay_steps", "warmup_steps", "grad_clip"):
        del c.optimizer[key]
    c.dtype = "float32"  # float32 | float64
    c.kernel = default_kernel_config()  # ReLU, depth 3, NTK; kernel.width is replaced by widths
    c.widths = (64, 128, 256, 512)  # finite widths, each against the infinite-width limit
    c.n_seeds = 8  # networks per width for the error table (the curves show the first)
    c.loss = ml_collections.ConfigDict()
    c.loss.names = ("ipm", "lsgan")  # one panel each: ipm | lsgan | vanilla | hinge
    c.loss.t = 1.0  # discriminator training time (SGD: round(t / lr) steps)
    c.loss.generator_target = "zero"  # LSGAN generator loss: zero -> f², one -> (f − 1)²
    c.loss.method = "auto"  # infinite-width dual solver (gantk.dynamics.METHODS)
    c.optimizer.name = "sgd"  # the finite discriminator's optimizer (SGD only)
    c.optimizer.lr = 0.01
    c.optimizer.momentum = 0.0
    c.discriminator = ml_collections.ConfigDict()
    c.discriminator.antisymmetric = True  # f = (f_θ1 − f_θ2)/√2, f_0 = 0
    c.data = ml_collections.ConfigDict()
    c.data.dim = 1  # 1 (curves) | 2 (heat maps)
    c.data.n_fake = 4  # fakes ~ N(fake_center · e_1, std² I)
    c.data.n_real = 4  # reals ~ N(real_center · e_1, std² I)
    c.data.fake_center = -1.0
    c.data.real_center = 1.0
    c.data.std = 0.5
    c.plot = ml_collections.ConfigDict()
    c.plot.extent = 3.0  # c(f_t) is drawn on [−extent, extent]^dim
    c.plot.grid_size = 241
    return c
