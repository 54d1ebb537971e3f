"""MAF (8 MADE layers, orders alternating, soft-clamped log-scale) on the 2-D checkerboard.

generative train --config flow_maf_checkerboard --workdir runs/flow_maf_checkerboard
"""

from generative.configs.flow_realnvp_checkerboard import CHECKS, CROSS_CHECKS, flow_config  # noqa: F401


def get_config():
    c = flow_config("maf")
    c.model.log_scale = "softclamp"
    c.model.clamp = 3.0
    return c
