"""Stochastic Latent Residual Video Prediction (SRVP, Franceschi et al., ICML 2020) in JAX.

    import jax, optax, video
    cfg = video.SRVPConfig(nf=16, ny=8, nz=8)                   # the model (video/srvp.py)
    tx = optax.adam(3e-4)
    state = video.init_state(cfg, tx, jax.random.key(0), seq_len=8)
    step = jax.jit(video.train_step(cfg, tx))                    # negative ELBO, one Adam step
    state, metrics = step(state, batch, key)                     # batch [B, T, 64, 64, nc]
    variables = {"params": state.params, "batch_stats": state.model_state}
    frames = video.generate(cfg, variables, x_cond, key, horizon=10)   # sampling
    result = video.evaluate_videos(cfg, variables, videos, nt_cond=5, horizon=10,
                                   n_samples=4, batch_size=2, key=key)  # best-of-4 PSNR/SSIM

Heavy dependencies (tensorflow, tensorflow-datasets) are imported lazily by the data loaders.
"""

from video.data import (
    DATASET_LAYOUTS,
    DigitSet,
    MissingDatasetError,
    MovingMNIST,
    bair,
    font_digits,
    human36m,
    kth,
    load_digits,
    moving_mnist_batch,
    moving_mnist_test_set,
    trajectories,
)
from video.evaluation import EvalResult, evaluate_videos, sample_and_score
from video.metrics import BestOfN, best_of_n, frechet_distance, psnr, ssim
from video.srvp import (
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
from video.train import init_state, srvp_loss, train_step

__all__ = [
    "DATASET_LAYOUTS",
    "BestOfN",
    "DigitSet",
    "ELBOTerms",
    "EvalResult",
    "MissingDatasetError",
    "MovingMNIST",
    "Noise",
    "SRVP",
    "SRVPConfig",
    "bair",
    "best_of_n",
    "condition",
    "decode",
    "elbo",
    "evaluate_videos",
    "font_digits",
    "frechet_distance",
    "gaussian_kl",
    "generate",
    "human36m",
    "init_state",
    "init_variables",
    "kth",
    "load_digits",
    "moving_mnist_batch",
    "moving_mnist_test_set",
    "psnr",
    "rollout_prior",
    "sample_and_score",
    "sample_noise",
    "srvp_loss",
    "ssim",
    "train_step",
    "trajectories",
]
