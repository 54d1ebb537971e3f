"""Residual flow (16 spectrally normalised LipSwish blocks, Russian-roulette log-det) on the
2-D checkerboard.

generative train --config flow_resflow_checkerboard --workdir runs/flow_resflow_checkerboard

Training uses the unbiased power-series estimator of Chen et al. 2019; the reported test NLL
uses the exact log-det (autodiff Jacobian, 2-D).
"""

from generative.configs.flow_realnvp_checkerboard import CHECKS, CROSS_CHECKS, flow_config  # noqa: F401


def get_config():
    c = flow_config("resflow")
    c.num_steps, c.log_every, c.checkpoint_every = 10000, 1000, 5000
    c.model.layers = 16  # more, narrower blocks: each block is a mild (Lipschitz < 1) change
    c.model.hidden = (32, 32)
    c.optimizer.lr = 2e-3
    return c
