"""`make demo`: infinite-width IPM flow, 500 N(0, I) particles to 8 Gaussians, ReLU NTK.

gantk flow --config demo --workdir runs/demo
"""

from gantk.configs._base import flow_config


def get_config():
    c = flow_config()
    c.num_steps = 1000
    c.log_every = 50
    c.checkpoint_every = 500
    return c
