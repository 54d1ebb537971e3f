"""Mode-coverage study: GAN, ALI, WGAN-GP, LSGAN and hinge on the grid and the ring.

generative table --config modes --workdir runs/modes
generative table --config modes table.protocols=pacgan table.datasets=grid table.seeds=3

Both protocols (ali_paper: random lr and β₁ per run, 10 000 samples; pacgan: Adam 1e-4,
β₁ 0.8, 2 500 samples), 10 runs per cell trained together (vmapped seeds), PacGAN's networks,
batch 100. See generative/modes.py for what each column counts.
"""

import ml_collections

from generative.core.config import (
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    Check,
    interval,
)


def _range(low: float, high: float, what: str) -> Check:
    return Check(
        lambda v: (
            isinstance(v, (tuple, list))
            and len(v) == 2
            and all(isinstance(x, (int, float)) and low <= x <= high for x in v)
            and v[0] <= v[1]
        ),
        f"two numbers (low, high) in [{low:g}, {high:g}] with low <= high ({what})",
    )


def get_config():
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.table = ml_collections.ConfigDict()
    c.table.models = "gan,ali,wgan_gp,lsgan,hinge"
    c.table.datasets = "grid,ring"
    c.table.protocols = "ali_paper,pacgan"
    c.table.seeds = 10
    c.table.steps = 400
    c.table.batch_size = 100
    c.table.seed = 0
    c.table.samples = ml_collections.ConfigDict({"ali_paper": 10000, "pacgan": 2500})
    c.table.lr_range = (1e-4, 1e-3)
    c.table.b1_range = (0.5, 0.9)
    c.table.pacgan_lr = 1e-4
    c.table.pacgan_b1 = 0.8
    return c


CHECKS = {
    "table.seed": NON_NEGATIVE_INT,
    "table.samples.*": POSITIVE_INT,
    "table.lr_range": _range(1e-7, 1.0, "learning rates"),
    "table.b1_range": _range(0.0, 0.999, "Adam β₁"),
    "table.pacgan_lr": POSITIVE,
    "table.pacgan_b1": interval(0.0, 1.0, high_open=True),
}
