"""Stochastic Latent Residual Video Prediction (SRVP, Franceschi et al., ICML 2020) in JAX.

Heavy dependencies (tensorflow, tensorflow-datasets) are imported lazily by the data loaders.
"""

from video.data import (
    DATASET_LAYOUTS,
    DigitSet,
    MissingDatasetError,
    bair,
    font_digits,
    human36m,
    kth,
    load_digits,
    moving_mnist_batch,
    moving_mnist_test_set,
    trajectories,
)
from video.metrics import BestOfN, best_of_n, frechet_distance, psnr, ssim
from video.model import (
    SRVP,
    ELBOTerms,
    Noise,
    SRVPConfig,
    condition,
    decode,
    elbo,
    gaussian_kl,
    generate,
    init_variables,
    rollout_prior,
    sample_noise,
)
