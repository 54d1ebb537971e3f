"""NICE (8 additive couplings and a final diagonal scaling) on the 2-D checkerboard.

generative train --config flow_nice_checkerboard --workdir runs/flow_nice_checkerboard
"""

from generative.configs.flow_realnvp_checkerboard import CHECKS, CROSS_CHECKS, flow_config  # noqa: F401


def get_config():
    return flow_config("nice")
