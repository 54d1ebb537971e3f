"""Tiny VQ-VAE on a few hundred font digits: smoke tests and quick CPU checks.

generative train --config vqvae_digits_tiny --workdir /tmp/vqvae-tiny
"""

from generative.configs.vqvae_digits import CHECKS, vqvae_config  # noqa: F401


def get_config():
    c = vqvae_config()
    c.num_steps, c.log_every, c.checkpoint_every = 30, 10, 30
    c.batch_size = 32
    c.progress = False
    c.data.source = "font"
    c.data.num_font_digits = 256
    c.model.num_codes = 16
    c.model.embed_dim = 4
    c.model.nf = 8
    c.eval.num_test = 64
    c.eval.batch = 32
    c.eval.log_num_test = 32
    c.eval.frechet_num = 0
    return c
