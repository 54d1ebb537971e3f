"""Sinkhorn, exact OT and energy distance between two toy distributions.

generative metrics --config toy_metrics source=standard_normal target=eight_gaussians
"""

import ml_collections


def get_config():
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.source = "standard_normal"
    c.target = "eight_gaussians"
    c.n = 500
    c.sinkhorn_epsilon = 0.1
    return c
