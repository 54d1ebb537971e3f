"""APHYNITY benchmark sized for a 2-core CPU: pendulum, FitzHugh-Nagumo, damped wave x 4 methods.

Launch: physics aphynity --config aphynity --workdir runs/physics-aphynity
Writes aphynity.csv and aphynity.md (forecast MSE, parameter error, ||F_a||^2) in the workdir.
Each (data set, method) pair trains with the shared loop in WORKDIR/<data set>/<method>
(checkpoints, metrics.csv, TensorBoard; log_every / checkpoint_every apply to every pair);
rerunning the command resumes an interrupted pair and reuses finished ones.
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
    del c.optimizer  # unused: APHYNITY has its own Adam on (θ_p, θ_a), see aphynity.<data set>.lr
    c.aphynity = ml_collections.ConfigDict()
    c.aphynity.datasets = "pendulum,fhn,wave"
    c.aphynity.methods = "physics,data,physics+data,aphynity"
    c.aphynity.num_train = 16
    c.aphynity.num_test = 8
    c.aphynity.lambda0 = 1.0
    c.aphynity.lambda_every = 10  # gradient steps on θ between two updates of λ
    c.aphynity.physics_lr_scale = 10.0  # learning rate of the physical parameters / lr
    c.aphynity.pendulum = _sub(2000, 3e-3, 10.0, 11, 8)
    # τ sets how fast λ grows: λ must reach about ‖F_a‖² / L_traj (≈ 0.04 / 1e-4 on
    # FitzHugh–Nagumo) within the run. With τ = 10, λ ended at 2.0 after 400 steps and
    # APHYNITY stayed at the physics-only fit (forecast MSE 4.6e-2 against 1.5e-3 with τ = 1e4;
    # wave 4.8e-4 against 5.5e-5).
    c.aphynity.fhn = _sub(1000, 3e-3, 1e4, 6, 4)
    c.aphynity.wave = _sub(1000, 3e-3, 1e4, 6, 4)
    return c
