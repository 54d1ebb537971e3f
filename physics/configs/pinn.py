"""PINN for viscous Burgers (Raissi et al. 2019): 8 × 20 tanh, 10 000 collocation points, Adam then L-BFGS.

Launch: physics pinn --config pinn --workdir runs/physics-pinn
Writes pinn.json, pinn.md, pinn_error.png and pinn_snapshots.png in the workdir; the Adam and
L-BFGS phases are resumable runs of the shared loop in WORKDIR/adam and WORKDIR/lbfgs.
1000 Adam + 3000 L-BFGS steps take about 10 minutes on 2 busy CPU cores (docs/pinn.md); the paper
runs L-BFGS to convergence: rerun with a larger pinn.lbfgs_steps to continue the same run.
"""

import math

import ml_collections

from generative.core.config import base_config


def get_config():
    c = base_config()
    c.num_steps = 1000  # Adam steps (full batch)
    c.log_every = 100
    c.checkpoint_every = 500
    c.optimizer.lr = 1e-3
    c.pinn = ml_collections.ConfigDict()
    c.pinn.nu = 0.01 / math.pi
    c.pinn.t_max = 0.99
    c.pinn.num_boundary = 100  # initial/boundary points
    c.pinn.num_collocation = 10000  # Latin hypercube residual points
    c.pinn.width = 20
    c.pinn.depth = 8  # hidden tanh layers
    c.pinn.derivatives = "forward"  # forward (nested jax.jvp) | taylor (jax.experimental.jet)
    c.pinn.dtype = "float32"  # float32 | float64
    c.pinn.lbfgs_steps = 3000  # L-BFGS iterations after Adam (0: none)
    c.pinn.lbfgs_memory = 50
    c.pinn.lbfgs_patience = 10  # stop after this many line searches of >= 10 evaluations in a row
    return c
