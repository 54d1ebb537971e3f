"""The best-of-N evaluation protocol of stochastic video prediction.

Best-of-N: per video and per metric, the sample whose mean over the *predicted* frames is best;
reported as mean ± 1.96·std/√N over videos. The frame metrics (PSNR, SSIM) and the Fréchet
distance are `generative.metrics`' (re-exported here).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from generative.metrics import frechet_distance, gaussian_window, psnr, ssim

__all__ = [
    "psnr",
    "ssim",
    "gaussian_window",
    "BestOfN",
    "best_of_n",
    "frechet_distance",
    "HIGHER_IS_BETTER",
]

HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "lpips": False}


class BestOfN(NamedTuple):
    mean: float  # mean over videos of the best sample's score
    ci95: float  # 1.96 · std / √N over videos
    per_video: np.ndarray  # [N] best score of each video
    per_frame: np.ndarray  # [T_pred] per-frame curve of the chosen samples, averaged over videos
    best_sample: np.ndarray  # [N] index of the chosen sample


def best_of_n(scores, higher_is_better: bool = True) -> BestOfN:
    """scores: [S, N, T_pred] per sample, video and predicted frame (conditioning excluded)."""
    scores = np.asarray(scores, np.float64)
    per_sample = scores.mean(-1)  # [S, N]
    best = per_sample.argmax(0) if higher_is_better else per_sample.argmin(0)  # [N]
    chosen = scores[best, np.arange(scores.shape[1])]  # [N, T_pred]
    per_video = chosen.mean(-1)
    n = per_video.shape[0]
    ci = 1.96 * per_video.std() / np.sqrt(n)
    return BestOfN(float(per_video.mean()), float(ci), per_video, chosen.mean(0), best)
