"""Video data: KTH / Human3.6M / BAIR loaders; Moving MNIST and digits from `generative.data`."""

from generative.data.digits import DIGIT_SOURCES, DigitSet, font_digits, load_digits, mnist_digits
from generative.data.moving_mnist import (
    MovingMNIST,
    Trajectory,
    moving_mnist_batch,
    moving_mnist_test_set,
    render,
    trajectories,
)
from video.data.datasets import (
    DATASET_LAYOUTS,
    MissingDatasetError,
    VideoFolder,
    bair,
    human36m,
    kth,
)

__all__ = [
    "DATASET_LAYOUTS",
    "DIGIT_SOURCES",
    "DigitSet",
    "MissingDatasetError",
    "MovingMNIST",
    "Trajectory",
    "VideoFolder",
    "bair",
    "font_digits",
    "human36m",
    "kth",
    "load_digits",
    "mnist_digits",
    "moving_mnist_batch",
    "moving_mnist_test_set",
    "render",
    "trajectories",
]
