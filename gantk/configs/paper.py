"""Paper table cell `DATASET-LOSS-KERNEL` with the reference hyper-parameters (50 000 steps).

gantk flow --config paper:eight_gaussians-inf_lsgan-relu
gantk table --steps 2000 --seeds 3        # the whole grid

DATASET: eight_gaussians | density | ab;  LOSS: inf_ipm | ipm | ipm_reset | inf_lsgan | lsgan;
KERNEL: rbf (infinite width only) | relu | relu_nobias.
"""

import itertools

from gantk.configs._base import flow_config

DATASETS = ("eight_gaussians", "density", "ab")
LOSSES = ("inf_ipm", "ipm", "ipm_reset", "inf_lsgan", "lsgan")
KERNELS = ("rbf", "relu", "relu_nobias")

# The reference toolkit's settings per loss (η: particle step; lr, T: discriminator SGD).
LOSS_SETTINGS = {
    "inf_ipm": dict(loss="ipm", finite=False, eta=1000.0, t=1.0),
    "ipm": dict(loss="ipm", finite=True, eta=100.0, t=0.1, lr=0.01, antisymmetric=True),
    "ipm_reset": dict(
        loss="ipm", finite=True, eta=1000.0, t=1.0, lr=0.1, antisymmetric=True, reset=True
    ),
    "inf_lsgan": dict(loss="lsgan", finite=False, eta=1000.0, t=1.0),
    "lsgan": dict(loss="lsgan", finite=True, eta=1.0, t=1.0, lr=0.1, antisymmetric=False),
}

VARIANTS = [
    f"{d}-{l}-{k}"
    for d, l, k in itertools.product(DATASETS, LOSSES, KERNELS)
    if not (k == "rbf" and LOSS_SETTINGS[l]["finite"])
]


def get_config(cell: str):
    dataset, loss, kernel = cell.split("-")
    s = LOSS_SETTINGS[loss]
    c = flow_config()
    c.data.name = dataset
    c.loss.name = s["loss"]
    c.loss.t = s["t"]
    c.eta = s["eta"]
    c.kernel.architecture = kernel
    c.discriminator.finite = s["finite"]
    c.discriminator.antisymmetric = s.get("antisymmetric", True)
    c.discriminator.reset = s.get("reset", False)
    c.optimizer.lr = s.get("lr", 0.1)
    c.log_every = 1000
    c.checkpoint_every = 10_000
    if dataset != "eight_gaussians":  # densities on [−1, 1]²
        c.eval.extent = 1.3
        c.eval.sinkhorn_epsilon = 0.01
    return c
