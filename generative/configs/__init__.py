"""`generative` presets, and the checks of their values (applied by
`generative.core.config.resolve` before any command runs)."""

from generative.core.config import POSITIVE, POSITIVE_INT, Check, comma_list, one_of

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

FAMILIES = ("gan", "ali", "vae", "vqvae", "flow", "diffusion")  # generative.families.FAMILIES
TABLE_MODELS = ("gan", "ali", "wgan_gp", "lsgan", "hinge")  # generative.modes.MODELS
TABLE_DATASETS = ("grid", "ring")  # generative.modes.DATASETS
TABLE_PROTOCOLS = ("ali_paper", "pacgan")  # generative.modes.PROTOCOLS

CHECKS = {
    "family": one_of(*FAMILIES),
    "table.models": comma_list(*TABLE_MODELS),
    "table.datasets": comma_list(*TABLE_DATASETS),
    "table.protocols": comma_list(*TABLE_PROTOCOLS),
    "table.seeds": POSITIVE_INT,
    "table.steps": POSITIVE_INT,
    "table.batch_size": POSITIVE_INT,
    "source": one_of(*TOY_DATASETS),  # generative.data.toy.TOY_DATASETS
    "target": one_of(*TOY_DATASETS),
    "n": POSITIVE_INT,
    "sinkhorn_epsilon": POSITIVE,
    "likelihood.runs": Check(lambda v: isinstance(v, str), "a comma-separated list of folders"),
    "likelihood.presets": Check(lambda v: isinstance(v, str), "a comma-separated list of presets"),
    "likelihood.num": POSITIVE_INT,
}
