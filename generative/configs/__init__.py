"""`generative` presets, and the checks of their values (applied by
`generative.core.config.resolve` before any command runs)."""

from generative.core.config import POSITIVE, POSITIVE_INT, one_of

TOY_DATASETS = (
    "eight_gaussians",
    "twenty_five_gaussians",
    "two_moons",
    "standard_normal",
    "ring",
    "grid",
    "checkerboard",
    "swiss_roll",
)

CHECKS = {
    "source": one_of(*TOY_DATASETS),  # generative.data.toy.TOY_DATASETS
    "target": one_of(*TOY_DATASETS),
    "n": POSITIVE_INT,
    "sinkhorn_epsilon": POSITIVE,
}
