"""Video data: Moving MNIST generated on the fly, KTH / Human3.6M / BAIR loaders."""

from video.data.datasets import DATASET_LAYOUTS
from video.data.datasets import MissingDatasetError
from video.data.datasets import VideoFolder
from video.data.datasets import bair
from video.data.datasets import human36m
from video.data.datasets import kth
from video.data.digits import DIGIT_SOURCES
from video.data.digits import DigitSet
from video.data.digits import font_digits
from video.data.digits import load_digits
from video.data.digits import mnist_digits
from video.data.moving_mnist import Trajectory
from video.data.moving_mnist import moving_mnist_batch
from video.data.moving_mnist import moving_mnist_test_set
from video.data.moving_mnist import render
from video.data.moving_mnist import trajectories
