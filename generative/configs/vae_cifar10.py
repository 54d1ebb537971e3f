"""VAE on CIFAR-10 32×32 (conv nets, Gaussian decoder with learned σ); needs `tfds build cifar10`.

generative train --config vae_cifar10 data.data_dir=/path/to/tensorflow_datasets
"""

from generative.configs.vae_digits import CHECKS, CROSS_CHECKS, vae_config  # noqa: F401


def get_config():
    c = vae_config()
    c.num_steps = 20000
    c.batch_size = 64
    c.log_every = 500
    c.checkpoint_every = 2000
    c.data.name = "cifar10"
    c.model.decoder = "gaussian"
    c.model.sigma = 0.1
    c.model.latent_dim = 64
    c.model.nf = 64
    c.model.hidden = 512
    c.eval.frechet_num = 0
    return c
