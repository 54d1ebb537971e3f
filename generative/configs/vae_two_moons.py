"""VAE on the 2-D two-moons toy (MLP nets, Gaussian decoder with learned σ, 2-D latent).

generative train --config vae_two_moons --workdir runs/vae_two_moons

Each step samples its batch (steps run in `lax.scan` chunks); the NLL is in nats of the
2-D density.
"""

from generative.configs.vae_digits import CHECKS, CROSS_CHECKS, vae_config  # noqa: F401


def get_config():
    c = vae_config()
    c.num_steps = 5000
    c.batch_size = 256
    c.log_every = 500
    c.data.name = "toy"
    c.data.toy = "two_moons"
    c.model.net = "mlp"
    c.model.decoder = "gaussian"
    c.model.sigma = 0.1
    c.model.latent_dim = 2
    c.model.hidden = 128
    c.model.layers = 2
    c.eval.num_test = 2000
    c.eval.batch = 500
    c.eval.log_num_test = 1000
    c.eval.frechet_num = 0
    return c
