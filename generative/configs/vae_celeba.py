"""VAE on CelebA 32×32 (conv nets, Gaussian decoder with learned σ); needs `tfds build celeb_a`.

generative train --config vae_celeba data.data_dir=/path/to/tensorflow_datasets

20 000 random training images (140×140 centre crops resized to 32×32) for training and
eval.num_test more for the test likelihood.
"""

from generative.configs.vae_cifar10 import get_config as cifar10_config
from generative.configs.vae_digits import CHECKS, CROSS_CHECKS  # noqa: F401


def get_config():
    c = cifar10_config()
    c.data.name = "celeb_a"
    return c
