"""The SRVP evaluation protocol: condition, sample N futures, best-of-N per video and metric.

Condition on `nt_cond` frames (posterior), roll the prior out for `horizon` frames, decode with
`w` from the last `nt_inf` conditioning frames, clamp to [0, 1]; score the predicted frames only.
Also scores the "repeat the last conditioning frame" baseline.
"""

from __future__ import annotations

import csv
import functools
import pathlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from video import metrics, srvp

__all__ = [
    "EvalResult",
    "sample_and_score",
    "evaluate_videos",
    "last_frame_baseline",
    "write_results",
    "write_gif",
    "video_strip",
]


class EvalResult(NamedTuple):
    scores: dict  # metric -> BestOfN
    baseline: dict  # metric -> BestOfN of the repeat-last-frame prediction
    blank: dict  # metric -> BestOfN of all-black predicted frames (a floor for MMNIST)
    fvd: float | None  # Fréchet video distance (first sample of each video) when I3D is given
    examples: np.ndarray  # [G, 3, T, H, W, C] truth / best-PSNR sample / first sample
    n_videos: int
    n_samples: int


def _frame_scores(pred, truth, lpips_params):
    # pred, truth: [..., Tp, H, W, C] -> dict of [..., Tp]
    out = {"psnr": metrics.psnr(pred, truth), "ssim": metrics.ssim(pred, truth)}
    if lpips_params is not None:
        from video import perceptual

        out["lpips"] = perceptual.lpips_distance(lpips_params, pred, truth)
    return out


AUTO_CHUNK_FRAMES = 160


def auto_sample_chunk(
    n_samples: int, videos: int, horizon: int, platform: str | None = None
) -> int:
    """Samples per chunk. On CPU (`platform`, by default JAX's default backend): the largest
    divisor of `n_samples` whose chunk decodes at most `AUTO_CHUNK_FRAMES` frames (at least
    1; a divisor leaves no remainder chunk, a second compiled body in `lax.map`), the size
    that keeps the CPU's caches warm. Elsewhere: all samples in one vectorised program."""
    if (platform or jax.default_backend()) != "cpu":
        return n_samples
    budget = max(1, min(n_samples, AUTO_CHUNK_FRAMES // max(1, videos * horizon)))
    return max(d for d in range(1, budget + 1) if n_samples % d == 0)


@functools.partial(
    jax.jit,
    static_argnames=("cfg", "nt_cond", "horizon", "n_samples", "sample_chunk", "with_frames"),
)
def sample_and_score(
    cfg,
    variables,
    videos,
    key,
    nt_cond: int,
    horizon: int,
    n_samples: int,
    sample_chunk: int | None = None,
    lpips_params=None,
    with_frames: bool = False,
):
    """videos [B, nt_cond + horizon, H, W, C] -> per-frame scores [S, B, horizon] (and samples
    [S, B, T, H, W, C] when `with_frames`). The S samples are vectorised (in chunks of
    `sample_chunk` samples; by default `auto_sample_chunk`: all at once on GPU/TPU; on CPU,
    with the host allocator of `generative.core.host_memory`, 2 videos × 100 samples took
    3.06 s in chunks of 4 samples (160 frames), 3.28 s in chunks of 6 (plus a remainder),
    3.49 s in chunks of 50 and 3.47 s one sample at a time — `benchmarks/video_train_step.py`)."""
    x_cond, truth = videos[:, :nt_cond], videos[:, nt_cond : nt_cond + horizon]
    encodings = srvp.encode_frames(cfg, variables, x_cond)  # shared by all samples

    def one(k):
        gen = srvp.generate(
            cfg, variables, x_cond, k, horizon, encodings=encodings, with_conditioning=with_frames
        )  # [B, T, H, W, C]
        scores = _frame_scores(gen[:, gen.shape[1] - horizon :], truth, lpips_params)
        return (scores, gen) if with_frames else (scores, None)

    keys = jax.random.split(key, n_samples)
    if not sample_chunk:
        sample_chunk = auto_sample_chunk(n_samples, videos.shape[0], horizon)
    return jax.lax.map(one, keys, batch_size=sample_chunk)


def last_frame_baseline(videos, nt_cond: int, horizon: int, lpips_params=None, blank: bool = False):
    """Scores [1, B, horizon] of repeating the last conditioning frame (or of black frames)."""
    truth = videos[:, nt_cond : nt_cond + horizon]
    pred = jnp.broadcast_to(videos[:, nt_cond - 1 : nt_cond], truth.shape)
    if blank:
        pred = jnp.zeros_like(truth)
    return jax.tree.map(lambda a: a[None], _frame_scores(pred, truth, lpips_params))


def evaluate_videos(
    cfg,
    variables,
    videos,
    nt_cond: int,
    horizon: int,
    n_samples: int,
    batch_size: int,
    key,
    lpips_params=None,
    i3d_variables=None,
    num_examples: int = 0,
    sample_chunk: int | None = None,
    progress: bool = False,
) -> EvalResult:
    """Best-of-`n_samples` scores of `variables` on videos [N, ≥ nt_cond + horizon, H, W, C]."""
    videos = np.asarray(videos, np.float32)
    n = len(videos)
    if videos.shape[1] < nt_cond + horizon:
        raise ValueError(
            f"test videos have {videos.shape[1]} frames, need nt_cond + horizon = "
            f"{nt_cond + horizon}"
        )
    videos = videos[:, : nt_cond + horizon]
    scores, base, blank, first_samples, examples = {}, {}, {}, [], None
    starts = range(0, n, batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="eval", unit="batch")
    for i, start in enumerate(starts):
        x = videos[start : start + batch_size]
        b = len(x)
        if b < batch_size:  # pad the last batch: one compiled shape
            x = np.concatenate([x, np.repeat(x[-1:], batch_size - b, 0)])
        want_frames = (i == 0 and num_examples > 0) or i3d_variables is not None
        s, frames = sample_and_score(
            cfg,
            variables,
            jnp.asarray(x),
            jax.random.fold_in(key, i),
            nt_cond,
            horizon,
            n_samples,
            sample_chunk,
            lpips_params,
            want_frames,
        )
        bl = last_frame_baseline(jnp.asarray(x), nt_cond, horizon, lpips_params)
        bk = last_frame_baseline(jnp.asarray(x), nt_cond, horizon, lpips_params, blank=True)
        for name in s:
            scores.setdefault(name, []).append(np.asarray(s[name])[:, :b])
            base.setdefault(name, []).append(np.asarray(bl[name])[:, :b])
            blank.setdefault(name, []).append(np.asarray(bk[name])[:, :b])
        if i3d_variables is not None:
            first_samples.append(np.asarray(frames[0, :b]))
        if i == 0 and num_examples > 0:
            g = min(num_examples, b)
            best = np.asarray(s["psnr"]).mean(-1).argmax(0)  # [B]
            fr = np.asarray(frames)
            examples = np.stack([np.stack([x[j], fr[best[j], j], fr[0, j]]) for j in range(g)])
    scores = {k: np.concatenate(v, 1) for k, v in scores.items()}  # [S, N, Tp]
    base = {k: np.concatenate(v, 1) for k, v in base.items()}
    blank = {k: np.concatenate(v, 1) for k, v in blank.items()}
    hib = metrics.HIGHER_IS_BETTER
    fvd = None
    if i3d_variables is not None:
        from video import perceptual

        fake = np.concatenate([videos[:, :nt_cond], np.concatenate(first_samples)[:, nt_cond:]], 1)
        fvd = perceptual.fvd(i3d_variables, videos, fake)
    return EvalResult(
        {k: metrics.best_of_n(v, hib[k]) for k, v in scores.items()},
        {k: metrics.best_of_n(v, hib[k]) for k, v in base.items()},
        {k: metrics.best_of_n(v, hib[k]) for k, v in blank.items()},
        fvd,
        examples if examples is not None else np.zeros((0,)),
        n,
        n_samples,
    )


def video_strip(videos) -> np.ndarray:
    """[K, T, H, W, C] float in [0, 1] -> uint8 frames [T, H, K·(W+2), C'] side by side."""
    v = np.clip(np.asarray(videos), 0, 1)
    k, t, h, w, c = v.shape
    pad = np.ones((k, t, h, 2, c), v.dtype)
    row = np.concatenate([np.concatenate([v[i], pad[i]], 2) for i in range(k)], 2)
    row = (row * 255).round().astype(np.uint8)
    return row[..., 0] if c == 1 else row


def write_gif(path, videos, fps: int = 4) -> None:
    """Write [K, T, H, W, C] videos side by side as an animated GIF."""
    import imageio

    imageio.mimsave(str(path), list(video_strip(videos)), duration=1000 / fps, loop=0)


def write_results(result: EvalResult, outdir, name: str, extra: dict | None = None) -> dict:
    """results.csv, results.md, per_frame.csv and sample GIFs in `outdir`; returns a summary."""
    outdir = pathlib.Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, table, ns in (
        (name, result.scores, result.n_samples),
        ("repeat last frame", result.baseline, 1),
        ("black frames", result.blank, 1),
    ):
        for metric, r in table.items():
            rows.append(
                {
                    "model": label,
                    "metric": metric,
                    "mean": r.mean,
                    "ci95": r.ci95,
                    "n_videos": result.n_videos,
                    "n_samples": ns,
                    **(extra or {}),
                }
            )
    if result.fvd is not None:
        rows.append(
            {
                "model": name,
                "metric": "fvd",
                "mean": result.fvd,
                "ci95": float("nan"),
                "n_videos": result.n_videos,
                "n_samples": 1,
                **(extra or {}),
            }
        )
    with open(outdir / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    metric_names = list(result.scores) + (["fvd"] if result.fvd is not None else [])
    lines = [
        f"| model | {' | '.join(m.upper() for m in metric_names)} |",
        "| --- |" + " --- |" * len(metric_names),
    ]
    for label in (name, "repeat last frame", "black frames"):
        cells = []
        for m in metric_names:
            r = [x for x in rows if x["model"] == label and x["metric"] == m]
            cells.append(
                "—"
                if not r
                else (
                    f"{r[0]['mean']:.4g}"
                    if m == "fvd"
                    else f"{r[0]['mean']:.4f} ± {r[0]['ci95']:.4f}"
                )
            )
        lines.append(f"| {label} | {' | '.join(cells)} |")
    md = "\n".join(lines) + (
        f"\n\n{result.n_videos} test videos, best of {result.n_samples} "
        "samples per video, mean ± 1.96·std/√N, predicted frames only.\n"
    )
    (outdir / "results.md").write_text(md)
    with open(outdir / "per_frame.csv", "w", newline="") as f:
        names = list(result.scores)
        w = csv.writer(f)
        w.writerow(["t"] + names + [f"baseline_{m}" for m in names])
        horizon = len(next(iter(result.scores.values())).per_frame)
        for t in range(horizon):
            w.writerow(
                [t + 1]
                + [result.scores[m].per_frame[t] for m in names]
                + [result.baseline[m].per_frame[t] for m in names]
            )
    for i, ex in enumerate(result.examples):
        write_gif(outdir / f"sample_{i}.gif", ex)
    return {r["model"] + "/" + r["metric"]: r["mean"] for r in rows}
