"""VAE on 28×28 digits with a Gaussian decoder (learned σ shared by all pixels), grey levels.

generative train --config vae_digits_gaussian --workdir runs/vae_digits_gaussian

The NLL is then a density on [0, 1]^784 (nats, may be negative): not comparable with the
Bernoulli presets' NLL of binarised digits.
"""

from generative.configs.vae_digits import CHECKS, CROSS_CHECKS, vae_config  # noqa: F401


def get_config():
    c = vae_config()
    c.model.decoder = "gaussian"
    c.model.sigma_mode = "learned"
    c.model.sigma = 0.1
    return c
