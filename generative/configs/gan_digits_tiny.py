"""gan_digits with tiny networks, 200 font digits and 4 steps (tests, quick checks).

generative train --config gan_digits_tiny --workdir /tmp/gan-digits-tiny
"""

from generative.configs.gan_grid import (  # noqa: F401
    CHECKS,
    CROSS_CHECKS,
    gan_config,
    image_config,
    tiny,
)


def get_config():
    c = tiny(image_config(gan_config("digits")))
    c.data.source = "font"
    return c
