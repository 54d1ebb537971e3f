"""Tiny VAE on a few hundred font digits (MLP nets): smoke tests and quick CPU checks.

generative train --config vae_digits_tiny --workdir /tmp/vae-tiny
"""

from generative.configs.vae_digits import CHECKS, CROSS_CHECKS, vae_config  # noqa: F401


def get_config():
    c = vae_config()
    c.num_steps, c.log_every, c.checkpoint_every = 30, 15, 30
    c.batch_size = 32
    c.progress = False
    c.data.source = "font"
    c.data.num_font_digits = 256
    c.model.net = "mlp"
    c.model.latent_dim = 4
    c.model.hidden = 64
    c.model.layers = 1
    c.eval.iwae_k = 8
    c.eval.num_test = 64
    c.eval.batch = 32
    c.eval.log_num_test = 32
    c.eval.frechet_num = 0
    return c
