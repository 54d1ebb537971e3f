"""Stochastic and deterministic Moving MNIST, generated on the fly in JAX.

Rules (spec `video.md`): two 28×28 digits on a 64×64 canvas, summed and clipped to [0, 1].
Each digit's top-left corner starts at `(sx, sy) ~ U{0..36}` with integer velocity
`(dx, dy) ~ U{-4..4}` (0 allowed). Positions are exact floats, rendered with rounding; frame 0
is the start position. A step that would leave `[0, 36]` is cut at the contact point: the
velocity is updated there and the remaining fraction of the step is travelled with the new
velocity (several contacts per step are resolved in order, corners included).
  - deterministic: the velocity component normal to the wall is reflected;
  - stochastic: both components are redrawn from U{-4..4}, then the component of every wall
    the digit touches is forced to point away from that wall.

Vectorised: `vmap` over videos and digits, `lax.scan` over frames.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "MovingMNIST",
    "CANVAS",
    "DIGIT",
    "MAX_POS",
    "MAX_SPEED",
    "NUM_DIGITS",
    "Trajectory",
    "trajectories",
    "render",
    "moving_mnist_batch",
    "moving_mnist_test_set",
    "TEST_SET_DEFAULTS",
]

CANVAS = 64
DIGIT = 28
MAX_POS = CANVAS - DIGIT  # 36: the top-left corner lives in [0, 36]
MAX_SPEED = 4
NUM_DIGITS = 2
_MAX_CONTACTS = 4  # contacts resolved per step (at most 3 can happen with |v| <= 4 < 36)
# Reference test sets: 5000 videos, seed 42; stochastic 25 frames, deterministic 100 frames.
TEST_SET_DEFAULTS = {"stochastic": (5000, 25, 42), "deterministic": (5000, 100, 42)}


class Trajectory(NamedTuple):
    positions: jax.Array  # [..., T, 2] float32 top-left (row, col) of each frame
    velocities: jax.Array  # [..., T, 2] float32 velocity used to leave each frame
    bounces: jax.Array  # [..., T, 2] bool: a wall contact on that axis during the step into t


def _step(p, v, key, stochastic: bool):
    """Advance one frame. p, v: [2] float32. Returns new p, v and per-axis contact flags [2]."""
    remaining = jnp.float32(1.0)
    bounced = jnp.zeros(2, bool)
    for i in range(_MAX_CONTACTS):
        target = p + remaining * v
        # time to reach each wall along each axis (inf when not reached within `remaining`)
        t_low = jnp.where((v < 0) & (target < 0), (0.0 - p) / jnp.where(v < 0, v, -1.0), jnp.inf)
        t_high = jnp.where(
            (v > 0) & (target > MAX_POS), (MAX_POS - p) / jnp.where(v > 0, v, 1.0), jnp.inf
        )
        t_axis = jnp.minimum(t_low, t_high)  # [2]
        tau = jnp.min(t_axis)
        hit = jnp.isfinite(tau)
        travel = jnp.where(hit, tau, remaining)
        p = p + travel * v
        remaining = remaining - travel
        hit_axis = hit & (t_axis <= tau)  # [2] every axis in contact at time tau (corners)
        # snap contact coordinates exactly onto the wall
        p = jnp.where(hit_axis & (t_low <= t_high), 0.0, p)
        p = jnp.where(hit_axis & (t_high < t_low), float(MAX_POS), p)
        if stochastic:
            new_v = jax.random.randint(
                jax.random.fold_in(key, i), (2,), -MAX_SPEED, MAX_SPEED + 1
            ).astype(jnp.float32)
            at_low, at_high = p <= 0.0, p >= MAX_POS
            new_v = jnp.where(at_low, jnp.abs(new_v), new_v)
            new_v = jnp.where(at_high, -jnp.abs(new_v), new_v)
            v = jnp.where(hit, new_v, v)
        else:
            v = jnp.where(hit_axis, -v, v)
        bounced = bounced | hit_axis
    p = jnp.clip(p, 0.0, MAX_POS)  # never active with |v| <= 4; guards float round-off
    return p, v, bounced


@functools.partial(jax.jit, static_argnames=("num_frames", "stochastic"))
def trajectories(key, num_frames: int, stochastic: bool) -> Trajectory:
    """One digit's trajectory: positions/velocities [T, 2]. vmap for many digits."""
    k_pos, k_vel, k_steps = jax.random.split(key, 3)
    p0 = jax.random.randint(k_pos, (2,), 0, MAX_POS + 1).astype(jnp.float32)
    v0 = jax.random.randint(k_vel, (2,), -MAX_SPEED, MAX_SPEED + 1).astype(jnp.float32)

    def body(carry, k):
        p, v = carry
        p_new, v_new, b = _step(p, v, k, stochastic)
        return (p_new, v_new), (p_new, v_new, b)

    keys = jax.random.split(k_steps, num_frames - 1)
    _, (ps, vs, bs) = jax.lax.scan(body, (p0, v0), keys)
    return Trajectory(
        jnp.concatenate([p0[None], ps]),
        jnp.concatenate([v0[None], vs]),
        jnp.concatenate([jnp.zeros((1, 2), bool), bs]),
    )


def render(digits, positions):
    """Digits [D, 28, 28] at positions [D, T, 2] -> frames [T, 64, 64] (summed, clipped)."""
    corners = jnp.round(positions).astype(jnp.int32)  # [D, T, 2]

    def place(digit, corner):  # [28, 28], [2] -> [64, 64]
        return jax.lax.dynamic_update_slice(
            jnp.zeros((CANVAS, CANVAS), digit.dtype), digit, (corner[0], corner[1])
        )

    layers = jax.vmap(lambda d, cs: jax.vmap(lambda c: place(d, c))(cs))(digits, corners)
    return jnp.clip(layers.sum(0), 0.0, 1.0)  # [T, 64, 64]


@functools.partial(jax.jit, static_argnames=("batch_size", "num_frames", "stochastic"))
def moving_mnist_batch(key, digit_images, batch_size: int, num_frames: int, stochastic: bool):
    """A batch of videos [B, T, 64, 64, 1] float32 in [0, 1] from digit_images [N, 28, 28]."""
    k_digits, k_traj = jax.random.split(key)
    idx = jax.random.randint(k_digits, (batch_size, NUM_DIGITS), 0, digit_images.shape[0])
    keys = jax.random.split(k_traj, batch_size * NUM_DIGITS).reshape(batch_size, NUM_DIGITS, -1)
    traj = jax.vmap(jax.vmap(lambda k: trajectories(k, num_frames, stochastic)))(keys)
    videos = jax.vmap(render)(digit_images[idx], traj.positions)  # [B, T, 64, 64]
    return videos[..., None]


def moving_mnist_test_set(
    digit_images,
    stochastic: bool,
    num_videos: int | None = None,
    num_frames: int | None = None,
    seed: int | None = None,
    chunk: int = 500,
) -> np.ndarray:
    """The fixed test set [N, T, 64, 64, 1] uint8 from test digits (defaults: 5000 videos,
    25 frames stochastic / 100 deterministic, seed 42); the same seed gives the same videos."""
    n0, t0, s0 = TEST_SET_DEFAULTS["stochastic" if stochastic else "deterministic"]
    num_videos, num_frames = num_videos or n0, num_frames or t0
    seed = s0 if seed is None else seed
    key = jax.random.PRNGKey(seed)
    digit_images = jnp.asarray(digit_images, jnp.float32)
    out = []
    for start in range(0, num_videos, chunk):  # chunks bound memory; each chunk its own key
        b = min(chunk, num_videos - start)
        v = moving_mnist_batch(
            jax.random.fold_in(key, start // chunk), digit_images, chunk, num_frames, stochastic
        )[:b]
        out.append(np.asarray(jnp.round(v * 255)).astype(np.uint8))
    return np.concatenate(out)


class MovingMNIST:
    """A Moving MNIST source: training batches keyed by step, the fixed test set.

    `digits`, `data_dir`, `num_font_digits` choose the digit images
    (`generative.data.digits.load_digits`: MNIST when prepared on disk, else font digits).
    The training batch of step s is drawn from `fold_in(key, s)`, so a resumed run sees the
    batches it would have seen. Test digits are loaded on first use.
    """

    def __init__(
        self,
        stochastic: bool,
        key: jax.Array,
        digits: str = "auto",
        data_dir: str | None = None,
        num_font_digits: int | None = None,
    ):
        from generative.data.digits import load_digits

        self.stochastic = bool(stochastic)
        self._key = key
        self._load = functools.partial(
            load_digits, source=digits, data_dir=data_dir, num_font_digits=num_font_digits
        )
        self.train_digits = self._load("train")
        self._train_images = jnp.asarray(self.train_digits.images)
        self._test_digits = None
        kind = "stochastic" if self.stochastic else "deterministic"
        self.source = f"Moving MNIST ({kind}), digits: {self.train_digits.source}"

    @property
    def test_digits(self):
        """The test split's `DigitSet` (disjoint from the training digits)."""
        if self._test_digits is None:
            self._test_digits = self._load("test")
        return self._test_digits

    def batch(self, step: int, batch_size: int, num_frames: int) -> np.ndarray:
        """Training videos [B, T, 64, 64, 1] float32 in [0, 1] of step `step`."""
        key = jax.random.fold_in(self._key, step)
        return np.asarray(
            moving_mnist_batch(key, self._train_images, batch_size, num_frames, self.stochastic)
        )

    def test_videos(self, num_videos: int, num_frames: int, seed: int | None = None) -> np.ndarray:
        """The first `num_videos` test videos [N, T, 64, 64, 1] float32 in [0, 1] (the same
        for the same seed; default seed 42, the reference test sets')."""
        videos = moving_mnist_test_set(
            self.test_digits.images,
            self.stochastic,
            num_videos,
            num_frames,
            seed,
            chunk=min(500, num_videos),
        )
        return videos.astype(np.float32) / 255.0
