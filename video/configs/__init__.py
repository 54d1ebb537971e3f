"""SRVP presets: one module per dataset (paper settings) plus small CPU presets.

`CHECKS` / `CROSS_CHECKS`: the values every preset accepts, applied by
`generative.core.config.resolve` before any command runs. The choice lists equal those of
the modules that use them (tests/core/test_config.py).
"""

from generative.core.config import (
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    one_of,
)

DATASETS = ("smmnist", "dmmnist", "kth", "human", "bair")  # video.train.DATASETS
ARCHITECTURES = ("dcgan", "vgg")  # video.srvp.ARCHITECTURES
DYNAMICS = ("residual", "mlp", "gru")  # video.srvp.DYNAMICS

CHECKS = {
    "dataset": one_of(*DATASETS),
    "digits": one_of("auto", "mnist", "font"),
    "num_font_digits": NON_NEGATIVE_INT,
    "seq_len": POSITIVE_INT,
    "nt_cond": POSITIVE_INT,
    "frame_stride": POSITIVE_INT,
    "batch_size": POSITIVE_INT,
    "model.nc": one_of(1, 3),
    "model.nf": POSITIVE_INT,
    "model.nhx": POSITIVE_INT,
    "model.ny": POSITIVE_INT,
    "model.nz": POSITIVE_INT,
    "model.nw": POSITIVE_INT,
    "model.nt_inf": POSITIVE_INT,
    "model.nh_inf": POSITIVE_INT,
    "model.nlayers_inf": POSITIVE_INT,
    "model.nh_res": POSITIVE_INT,
    "model.nlayers_res": POSITIVE_INT,
    "model.archi": one_of(*ARCHITECTURES),
    "model.res_gain": POSITIVE,
    "model.dynamics": one_of(*DYNAMICS),
    "model.n_euler_steps": POSITIVE_INT,
    "model.obs_scale": POSITIVE,
    "model.beta_y": NON_NEGATIVE,
    "model.beta_z": NON_NEGATIVE,
    "model.l2_res": NON_NEGATIVE,
    "eval.num_videos": POSITIVE_INT,
    "eval.seed": NON_NEGATIVE_INT,
    "eval.horizon": POSITIVE_INT,
    "eval.n_samples": POSITIVE_INT,
    "eval.batch_size": POSITIVE_INT,
    "eval.sample_chunk": NON_NEGATIVE_INT,
    "eval.num_gifs": NON_NEGATIVE_INT,
    "eval.log_videos": NON_NEGATIVE_INT,
    "eval.log_samples": POSITIVE_INT,
}


def _conditioning(c):
    if c.seq_len <= c.model.nt_inf or c.nt_cond < c.model.nt_inf:
        return (
            f"seq_len ({c.seq_len}) must exceed and nt_cond ({c.nt_cond}) "
            f"must be at least model.nt_inf ({c.model.nt_inf})"
        )
    return None


def _euler_steps(c):
    if c.model.n_euler_steps != 1 and c.model.dynamics != "residual":
        return (
            f"model.n_euler_steps={c.model.n_euler_steps} needs model.dynamics=residual "
            f"(got {c.model.dynamics})"
        )
    return None


CROSS_CHECKS = (_conditioning, _euler_steps)
