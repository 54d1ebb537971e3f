"""Video data: Moving MNIST generated on the fly, KTH / Human3.6M / BAIR loaders."""

from video.data.datasets import (
    DATASET_LAYOUTS,
    MissingDatasetError,
    VideoFolder,
    bair,
    human36m,
    kth,
)
from video.data.digits import DIGIT_SOURCES, DigitSet, font_digits, load_digits, mnist_digits
from video.data.moving_mnist import (
    Trajectory,
    moving_mnist_batch,
    moving_mnist_test_set,
    render,
    trajectories,
)
