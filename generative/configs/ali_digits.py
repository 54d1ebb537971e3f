"""ALI on 28×28 digits (MNIST if prepared, else the offline font digits), DCGAN networks.

generative train --config ali_digits --workdir /tmp/ali-digits
generative train --config ali_digits conditional=True --workdir /tmp/cali-digits

Encoder: `generative.nets.DCGANEncoder` (digits padded to 32×32, code μ and σ of a 64-D
latent); decoder: `generative.nets.DCGANDecoder` (tanh, 32×32 cropped to 28×28);
discriminator: a DCGAN encoder to 256 features for x, a maxout layer for z, a joint maxout
layer and a linear logit. Conditional: the one-hot digit enters all three networks. Adam 2e-4,
β₁ 0.5, batch 64.
"""

from generative.configs.ali_grid import (  # noqa: F401
    CHECKS,
    CROSS_CHECKS,
    ali_config,
    ali_image_config,
)


def get_config():
    return ali_image_config(ali_config("digits"))
