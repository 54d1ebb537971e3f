"""ali_digits with tiny networks, 200 font digits and 4 steps (tests, quick checks).

generative train --config ali_digits_tiny --workdir /tmp/ali-digits-tiny
"""

from generative.configs.ali_grid import (  # noqa: F401
    CHECKS,
    CROSS_CHECKS,
    ali_config,
    ali_image_config,
    tiny_ali,
)


def get_config():
    c = tiny_ali(ali_image_config(ali_config("digits")))
    c.data.source = "font"
    return c
