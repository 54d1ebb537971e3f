"""DCGAN on 28×28 digits (MNIST if prepared, else the offline font digits).

generative train --config gan_digits --workdir /tmp/gan-digits
generative train --config gan_digits conditional=True --workdir /tmp/cgan-digits

Generator: `generative.nets.DCGANDecoder` (batch norm, tanh) at 32×32 cropped to 28×28;
discriminator: `generative.nets.DCGANEncoder` on digits padded to 32×32 with an unbounded
logit. Conditional: one-hot digit appended to z and as 10 label planes to the
discriminator's input. Non-saturating loss, Adam 2e-4, β₁ 0.5, batch 64, 64-D latent.
"""

from generative.configs.gan_grid import (  # noqa: F401
    CHECKS,
    CROSS_CHECKS,
    gan_config,
    image_config,
)


def get_config():
    return image_config(gan_config("digits"))
