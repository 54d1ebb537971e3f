"""Paper table cell: 8 Gaussians, IPM ∞, ReLU NTK (η = 1000, T = 1, 50 000 steps).

gantk flow --config eight_gaussians_inf_ipm_relu
"""

from gantk.configs._base import flow_config


def get_config():
    return flow_config()
