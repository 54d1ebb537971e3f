"""APHYNITY on the pendulum only, a few steps per method: smoke tests.

Launch: physics aphynity --config aphynity_tiny --workdir /tmp/physics-aphynity-tiny
"""

from physics.configs import aphynity


def get_config():
    c = aphynity.get_config()
    c.aphynity.datasets = "pendulum"
    c.aphynity.num_train, c.aphynity.num_test = 4, 2
    c.aphynity.pendulum.steps = 3
    c.aphynity.pendulum.batch_size = 2
    c.aphynity.lambda_every = 1
    return c
