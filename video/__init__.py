"""Stochastic Latent Residual Video Prediction (SRVP, Franceschi et al., ICML 2020) in JAX.

Heavy dependencies (tensorflow, tensorflow-datasets) are imported lazily by the data loaders.
"""

from video.data import DATASET_LAYOUTS
from video.data import DigitSet
from video.data import MissingDatasetError
from video.data import bair
from video.data import font_digits
from video.data import human36m
from video.data import kth
from video.data import load_digits
from video.data import moving_mnist_batch
from video.data import moving_mnist_test_set
from video.data import trajectories
from video.metrics import BestOfN
from video.metrics import best_of_n
from video.metrics import frechet_distance
from video.metrics import psnr
from video.metrics import ssim
from video.model import SRVP
from video.model import ELBOTerms
from video.model import Noise
from video.model import SRVPConfig
from video.model import condition
from video.model import decode
from video.model import elbo
from video.model import gaussian_kl
from video.model import generate
from video.model import init_variables
from video.model import rollout_prior
from video.model import sample_noise
