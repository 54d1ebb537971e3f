"""PINN smoke test: 2 × 8 tanh, 64 collocation points, a few Adam and L-BFGS steps.

Launch: physics pinn --config pinn_tiny --workdir /tmp/physics-pinn-tiny
"""

from physics.configs import pinn


def get_config():
    c = pinn.get_config()
    c.num_steps = 4
    c.log_every = 2
    c.checkpoint_every = 4
    c.progress = False
    c.pinn.num_boundary = 16
    c.pinn.num_collocation = 64
    c.pinn.width = 8
    c.pinn.depth = 2
    c.pinn.lbfgs_steps = 4
    c.pinn.lbfgs_memory = 5
    return c
