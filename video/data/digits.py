"""Digit sources live in the shared base package: `generative.data.digits` (re-exported here)."""

from generative.data.digits import (  # noqa: F401
    DIGIT_SOURCES,
    FONT_DIGITS_PER_SPLIT,
    DigitSet,
    font_digits,
    load_digits,
    mnist_digits,
)
