"""gantk presets, and the checks of their values (applied by `generative.core.config.resolve`).

`CHECKS` maps a key pattern to the values it accepts, `CROSS_CHECKS` relate several keys; a
check whose keys a preset lacks does not apply to it (see `generative.core.config.check_config`).
The choice lists equal those of the modules that use them (tests/core/test_config.py).
"""

from generative.core.config import (
    FINITE,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    Check,
    at_least,
    each,
    one_of,
)

DTYPES = ("float32", "float64")
FLOW_DATASETS = (  # gantk.flow.DATASETS
    "eight_gaussians",
    "twenty_five_gaussians",
    "two_moons",
    "ab",
    "density",
    "mnist",
    "celeb_a",
)
LOSSES = ("ipm", "lsgan", "vanilla", "hinge")  # gantk.dynamics.LOSSES
METHODS = ("auto", "closed_form", "eigen", "lanczos", "ode", "fixed_step")  # dynamics.METHODS
ARCHITECTURES = (  # gantk.kernels.ARCHITECTURES
    "relu",
    "relu_nobias",
    "relu_highbias",
    "sigmoid",
    "rbf",
    "gelu",
    "erf",
    "leaky_relu",
    "abs",
    "sin",
    "identity",
)
# `gantk table` grid names (gantk.configs.paper); checked by that command only, since
# `gantk.table.run_table` refuses them itself as well
TABLE_DATASETS = ("eight_gaussians", "density", "ab")
TABLE_LOSSES = ("inf_ipm", "ipm", "ipm_reset", "inf_lsgan", "lsgan")
TABLE_KERNELS = ("rbf", "relu", "relu_nobias")

CHECKS = {
    "dtype": one_of(*DTYPES),
    # flow
    "data.name": one_of(*FLOW_DATASETS),
    "data.source": one_of("auto", "standard_normal", *FLOW_DATASETS[:3]),
    "data.image_size": POSITIVE_INT,
    "data.digit_source": one_of("auto", "mnist", "font"),
    "data.n_particles": POSITIVE_INT,
    "data.n_targets": POSITIVE_INT,
    "kernel.architecture": one_of(*ARCHITECTURES),
    "kernel.kind": one_of("", "ntk", "nngp"),
    "kernel.network": one_of("mlp", "resmlp", "conv"),
    "kernel.depth": POSITIVE_INT,
    "kernel.width": POSITIVE_INT,
    "kernel.W_std": POSITIVE,
    "kernel.b_std": FINITE,
    "kernel.rbf_gamma": POSITIVE,
    "kernel.leaky_slope": FINITE,
    "kernel.block_size": POSITIVE_INT,
    "kernel.implementation": one_of("auto", "neural_tangents", "closed_form"),
    "loss.name": one_of(*LOSSES),
    "loss.t": POSITIVE,
    "loss.generator_target": one_of("zero", "one"),
    "loss.method": one_of(*METHODS),
    "loss.lanczos_iters": POSITIVE_INT,
    "loss.rtol": POSITIVE,
    "loss.atol": POSITIVE,
    "loss.fixed_steps": NON_NEGATIVE_INT,
    "optimizer.name": one_of("sgd"),  # the finite discriminator is trained by SGD
    "generator.kind": one_of("particles", "mlp"),
    "generator.latent_dim": POSITIVE_INT,
    "generator.width": POSITIVE_INT,
    "generator.depth": POSITIVE_INT,
    "generator.optimizer.name": one_of("adam", "adamw", "sgd", "rmsprop"),
    "eta": POSITIVE,
    "eval.sinkhorn_epsilon": POSITIVE,
    "eval.grid_size": at_least(2, integer=True),
    "eval.extent": POSITIVE,
    "eval.max_frames": POSITIVE_INT,
    # adequacy
    "widths": each(POSITIVE_INT),
    "n_seeds": POSITIVE_INT,
    "loss.names": each(one_of(*LOSSES)),
    "data.dim": one_of(1, 2),
    "data.n_fake": POSITIVE_INT,
    "data.n_real": POSITIVE_INT,
    "data.fake_center": FINITE,
    "data.real_center": FINITE,
    "data.std": POSITIVE,
    "plot.extent": POSITIVE,
    "plot.grid_size": at_least(2, integer=True),
    # field
    "pad_dim": Check(
        lambda v: isinstance(v, int) and not isinstance(v, bool) and (v == 0 or v >= 2),
        "0 (the plane itself) or an integer >= 2",
    ),
    "field.nx": at_least(2, integer=True),
    "field.ny": at_least(2, integer=True),
    "field.x_range": each(FINITE, min_len=2),
    "field.y_range": each(FINITE, min_len=2),
    "field.real": each(FINITE, min_len=2),
    # table
    "steps": POSITIVE_INT,
    "seeds": POSITIVE_INT,
    "workers": POSITIVE_INT,
}


def _field_ranges(c):
    for name in ("x_range", "y_range"):
        r = tuple(c.field[name])
        if len(r) != 2 or not r[0] < r[1]:
            return f"field.{name} must be two numbers (low, high) with low < high, got {r}"
    if len(c.field.real) != 2:
        return f"field.real must be a 2-D point, got {tuple(c.field.real)}"
    return None


CROSS_CHECKS = (_field_ranges,)
