"""APHYNITY benchmark sized for a 2-core CPU: pendulum, FitzHugh-Nagumo, damped wave x 4 methods.

Launch: physics aphynity --config aphynity --workdir runs/physics-aphynity
Writes aphynity.csv and aphynity.md (forecast MSE, parameter error, ||F_a||^2) in the workdir.
"""

import ml_collections

from generative.core.config import base_config


def _sub(steps, lr, tau, window, batch_size):
    s = ml_collections.ConfigDict()
    s.steps, s.lr, s.tau, s.window, s.batch_size = steps, lr, tau, window, batch_size
    return s


def get_config():
    c = base_config()
    c.num_steps = 0  # unused: each (data set, method) pair has its own step count
    c.aphynity = ml_collections.ConfigDict()
    c.aphynity.datasets = "pendulum,fhn,wave"
    c.aphynity.methods = "physics,data,physics+data,aphynity"
    c.aphynity.num_train = 16
    c.aphynity.num_test = 8
    c.aphynity.lambda0 = 1.0
    c.aphynity.lambda_every = 10
    c.aphynity.pendulum = _sub(2000, 3e-3, 10.0, 11, 8)
    c.aphynity.fhn = _sub(400, 3e-3, 10.0, 6, 4)
    c.aphynity.wave = _sub(400, 3e-3, 10.0, 6, 4)
    return c
