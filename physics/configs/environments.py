"""Learning across environments (LEADS, One-Per-Env, One-For-All; CoDA's study) on a 2-core CPU.

Launch: physics environments --config environments --workdir runs/physics-environments
Writes environments.csv / environments.md (test MSE mean ± std beside the published figures),
coda.csv and the figures lv_trajectories.png, gs_trajectories.png, coda_adaptation.png.
Each (system, method) pair trains with the shared loop in WORKDIR/<system>/<method> (and
WORKDIR/coda/<method>/{train,adapt}); rerunning the command resumes or reuses them.
Paper settings the CPU budget changes: the step counts (the references train 120 000
steps) and the Gray–Scott network width (64 in the references).
"""

import ml_collections

from generative.core.config import base_config


def _lv():
    s = ml_collections.ConfigDict()
    s.steps = 20000
    s.lr = 1e-3
    s.num_train = 1  # trajectories per environment
    s.hidden = 64
    s.init_gain = 0.05  # kernels N(0, gain²), biases 0
    s.lambda_inv = 2e-4  # λ of the LEADS penalty (reference: 1 / 5e3)
    s.factor_lip = 1e-2  # weight of Σσ(W) inside the penalty
    s.power_iterations = 5
    s.tf_decay = 0.99  # teacher forcing ε_j = decay^(1 + j // tf_every); 0: none
    s.tf_every = 10
    s.steps_per_obs = 1  # RK4 steps of the learned field per observation interval
    return s


def _gs():
    s = _lv()
    s.steps = 5000
    s.size = 32
    s.hidden = 16
    s.scale = 1e-3  # output factor of the convolutional network
    s.init_gain = 0.1
    s.lambda_inv = 1e-3
    return s


def _coda():
    s = ml_collections.ConfigDict()
    s.steps = 10000
    s.lr = 1e-3
    s.num_train = 4
    s.context_dim = 2
    s.init_gain = 0.15
    s.lambda_w = 1e-6  # Σ_i ‖W_i,:‖₂
    s.lambda_context = 1e-4  # Σ_e ‖ξ_e‖²
    s.grad_clip = 1.0
    s.tf_decay = 0.99
    s.tf_every = 30
    s.adapt_steps = 2000
    s.adapt_lr = 1e-3
    s.adapt_num_train = 1
    s.adapt_tf_decay = 0.95
    s.adapt_tf_every = 30
    return s


def get_config():
    c = base_config()
    c.num_steps = 0  # unused: each run has its own step count (environments.<system>.steps)
    del c.optimizer  # unused: Adam, environments.<system>.lr
    c.log_every = 1000
    c.checkpoint_every = 5000
    c.environments = ml_collections.ConfigDict()
    e = c.environments
    e.systems = "lv,gs"
    e.methods = "leads,one_per_env,one_for_all"
    e.coda_methods = "coda,leads,one_for_all"  # "": no CoDA study
    e.num_test = 32  # test trajectories per environment
    e.lv = _lv()
    e.gs = _gs()
    e.coda = _coda()
    return c
