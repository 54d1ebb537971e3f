"""Forecasting data sets: WaveEq / WaveEq-100 (procedural, cached), SST, TaxiBJ, 3D chairs.

Every loader returns ``{"train": array, "test": array}`` of sequences ``[N, T, H, W, C]``
(``[N, T, P]`` for WaveEq-100, P = 100 sensor pixels) in float32, and
:class:`WindowSampler` cuts fixed-length windows out of them.

WaveEq (Donà et al., ICLR 2021): 300 sequences (seed 42), ``c ~ U(300, 400)``,
``f0 ~ U(1, 30)``, RK4 at dt = 1e-3 for 300 frames, each sequence min-max normalised to
[0, 1] over its 300 frames, then subsampled by 2 in time (150 frames). The first 240 are the
training set, the last 60 the test set. The whole set is generated in one vmapped diffrax
solve per chunk and cached as ``<cache_dir>/waveeq_*.npz``.

Difference from the reference loader (a bug fix): the reference computed the sequence
length from the wrong axis of the ``[N, T, H, W]`` array (64, the grid size, instead of
150, the number of frames). With its flat ``index -> (sequence, start)`` mapping this meant
only about a third of the 240 training sequences were ever sampled. :class:`WindowSampler`
takes the length from the time axis (axis 1) and samples uniformly over every
``(sequence, start)`` pair of all training sequences.

On-disk layouts for the data sets that cannot be generated here (nothing downloads):

- SST: ``<data_dir>/sst/zone_01.npy … zone_20.npy``, each ``[days, 64, 64]`` float32 sea
  surface temperature of one NEMO zone. Zones 17–20 are the test set. Each zone is
  standardised with its own mean and standard deviation.
- TaxiBJ: ``<data_dir>/taxibj/train.npz`` and ``test.npz`` with ``inputs`` and ``targets``,
  each ``[N, 4, 32, 32, 2]`` (in/out flows, already scaled to [0, 1]).
- 3D chairs: ``<data_dir>/chairs/chairs.npz`` with ``views`` ``[N, V, 64, 64, 3]`` uint8,
  the V views of each chair ordered by azimuth; the last 10% of chairs are the test set and
  sequences are ``seq_len`` consecutive views (cyclic).
"""

from __future__ import annotations

import os
import pathlib
from functools import partial

import numpy as np

__all__ = [
    "default_cache_dir",
    "generate_waveeq",
    "load_waveeq",
    "load_waveeq100",
    "waveeq100_pixels",
    "load_sst",
    "load_taxibj",
    "load_chairs",
    "WindowSampler",
    "DATASETS",
    "load_dataset",
]


def default_cache_dir() -> pathlib.Path:
    return pathlib.Path(
        os.environ.get("PHYSICS_CACHE_DIR", "~/.cache/generative/physics")
    ).expanduser()


# ----------------------------------------------------------------------------- WaveEq


def generate_waveeq(
    num_sequences: int = 300,
    *,
    seed: int = 42,
    size: int = 64,
    num_frames: int = 300,
    subsample: int = 2,
    dt: float = 1e-3,
    chunk: int = 25,
    vectorised: bool = True,
) -> dict[str, np.ndarray]:
    """Generates WaveEq sequences; returns ``video`` [N, num_frames // subsample, size, size],
    ``c`` [N], ``f0`` [N].

    ``vectorised=False`` integrates one sequence at a time (the reference's approach; kept for
    the benchmark). Both give the same numbers.
    """
    import jax
    import jax.numpy as jnp

    from physics.simulators import simulate_wave

    rng = np.random.default_rng(seed)
    c = rng.uniform(300.0, 400.0, num_sequences).astype(np.float32)
    f0 = rng.uniform(1.0, 30.0, num_sequences).astype(np.float32)
    sim = partial(simulate_wave, size=size, num_frames=num_frames, dt=dt)
    if vectorised:
        chunk = min(chunk, num_sequences)
        fn = jax.jit(jax.vmap(sim))
    else:
        chunk = 1
        single = jax.jit(sim)
        fn = lambda cs, fs: single(cs[0], fs[0])[None]  # noqa: E731
    out = np.empty((num_sequences, len(range(0, num_frames, subsample)), size, size), np.float32)
    for start in range(0, num_sequences, chunk):
        stop = min(start + chunk, num_sequences)
        cs, fs = np.zeros(chunk, np.float32), np.ones(chunk, np.float32)  # pad: one shape only
        cs[: stop - start], fs[: stop - start] = c[start:stop], f0[start:stop]
        w = np.asarray(fn(jnp.asarray(cs), jnp.asarray(fs)))[: stop - start]  # [n, T, H, W]
        lo = w.min(axis=(1, 2, 3), keepdims=True)
        hi = w.max(axis=(1, 2, 3), keepdims=True)
        out[start:stop] = ((w - lo) / (hi - lo))[:, ::subsample]
    return {"video": out, "c": c, "f0": f0}


def load_waveeq(
    cache_dir=None,
    *,
    num_sequences: int = 300,
    num_train: int = 240,
    seed: int = 42,
    size: int = 64,
    num_frames: int = 300,
    subsample: int = 2,
) -> dict[str, np.ndarray]:
    """WaveEq train/test splits ``[N, T, H, W, 1]``, generated once and cached as npz."""
    if not 0 < num_train < num_sequences:
        raise ValueError(f"num_train must be in (0, {num_sequences}), got {num_train}")
    cache_dir = pathlib.Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    name = f"waveeq_n{num_sequences}_seed{seed}_s{size}_f{num_frames}_sub{subsample}.npz"
    path = cache_dir / name
    if path.exists():
        with np.load(path) as z:
            video = z["video"]
    else:
        data = generate_waveeq(
            num_sequences, seed=seed, size=size, num_frames=num_frames, subsample=subsample
        )
        video = data["video"]
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **data)
        os.replace(tmp, path)
    video = video[..., None]
    return {"train": video[:num_train], "test": video[num_train:]}


def waveeq100_pixels(size: int = 64, num_pixels: int = 100, seed: int = 42) -> np.ndarray:
    """The fixed random sensor positions of WaveEq-100 (flat indices into size × size)."""
    return np.sort(np.random.default_rng(seed).choice(size * size, num_pixels, replace=False))


def load_waveeq100(
    cache_dir=None, *, num_pixels: int = 100, pixel_seed: int = 42, **kwargs
) -> dict[str, np.ndarray]:
    """WaveEq observed on 100 fixed random pixels: ``[N, T, num_pixels]``."""
    data = load_waveeq(cache_dir, **kwargs)
    n, t, h, w, _ = data["train"].shape
    idx = waveeq100_pixels(h, num_pixels, pixel_seed)
    return {k: v.reshape(v.shape[0], t, h * w)[:, :, idx] for k, v in data.items()}


# ----------------------------------------------------------------------------- on-disk sets


def _require(path: pathlib.Path, what: str, layout: str) -> pathlib.Path:
    if not path.exists():
        raise FileNotFoundError(f"{what} data not found: missing {path}; expected layout {layout}")
    return path


_SST_LAYOUT = "<data_dir>/sst/zone_01.npy ... zone_20.npy, each [days, 64, 64] float32"


def load_sst(
    data_dir,
    *,
    seq_len: int = 10,
    num_zones: int = 20,
    test_zones=(17, 18, 19, 20),
    stride: int = 1,
) -> dict[str, np.ndarray]:
    """SST windows of ``seq_len`` consecutive days ``[N, seq_len, 64, 64, 1]``."""
    root = pathlib.Path(data_dir).expanduser() / "sst"
    out = {"train": [], "test": []}
    for zone in range(1, num_zones + 1):
        path = _require(root / f"zone_{zone:02d}.npy", "SST", _SST_LAYOUT)
        x = np.load(path).astype(np.float32)
        if x.ndim != 3:
            raise ValueError(f"SST file {path} has shape {x.shape}; expected [days, H, W]")
        x = (x - x.mean()) / (x.std() + 1e-8)
        starts = range(0, x.shape[0] - seq_len + 1, stride)
        windows = np.stack([x[s : s + seq_len] for s in starts])[..., None]
        out["test" if zone in test_zones else "train"].append(windows)
    return {k: np.concatenate(v) for k, v in out.items()}


_TAXIBJ_LAYOUT = "<data_dir>/taxibj/{train,test}.npz with inputs/targets [N, 4, 32, 32, 2]"


def load_taxibj(data_dir) -> dict[str, np.ndarray]:
    """TaxiBJ sequences ``[N, 8, 32, 32, 2]`` (4 conditioning + 4 target frames)."""
    root = pathlib.Path(data_dir).expanduser() / "taxibj"
    out = {}
    for split in ("train", "test"):
        path = _require(root / f"{split}.npz", "TaxiBJ", _TAXIBJ_LAYOUT)
        with np.load(path) as z:
            for key in ("inputs", "targets"):
                if key not in z:
                    raise ValueError(
                        f"TaxiBJ file {path} lacks {key!r}; expected layout {_TAXIBJ_LAYOUT}"
                    )
            out[split] = np.concatenate([z["inputs"], z["targets"]], 1).astype(np.float32)
    return out


_CHAIRS_LAYOUT = "<data_dir>/chairs/chairs.npz with views [N, V, 64, 64, 3] uint8"


def load_chairs(
    data_dir, *, seq_len: int = 15, test_fraction: float = 0.1
) -> dict[str, np.ndarray]:
    """Multi-view chairs: every cyclic run of ``seq_len`` views ``[N, seq_len, 64, 64, 3]``."""
    path = _require(
        pathlib.Path(data_dir).expanduser() / "chairs" / "chairs.npz", "3D chairs", _CHAIRS_LAYOUT
    )
    with np.load(path) as z:
        views = z["views"]
    n, v = views.shape[:2]
    if seq_len > v:
        raise ValueError(f"seq_len {seq_len} exceeds the {v} views per chair in {path}")
    idx = (np.arange(v)[:, None] + np.arange(seq_len)[None]) % v  # [V, seq_len]
    seqs = views[:, idx].astype(np.float32) / 255.0  # [N, V, seq_len, 64, 64, 3]
    n_test = max(1, int(round(n * test_fraction)))
    split = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
    return {"train": split(seqs[: n - n_test]), "test": split(seqs[n - n_test :])}


# ----------------------------------------------------------------------------- windows


class WindowSampler:
    """Uniform random windows of ``length`` frames from sequences ``[N, T, ...]``.

    The number of windows per sequence is ``T − length + 1`` with ``T`` read from the time
    axis (axis 1) — see the module docstring for the reference's bug.
    """

    def __init__(self, sequences: np.ndarray, length: int, seed: int = 0):
        if sequences.ndim < 3:
            raise ValueError(f"sequences must be [N, T, ...], got shape {sequences.shape}")
        self.sequences = sequences
        self.length = length
        self.num_sequences, self.seq_len = sequences.shape[:2]
        if length > self.seq_len:
            raise ValueError(f"window length {length} exceeds sequence length {self.seq_len}")
        self.starts_per_sequence = self.seq_len - length + 1
        self.seed = seed

    def __len__(self) -> int:
        return self.num_sequences * self.starts_per_sequence

    def indices(self, step: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(sequence index, start) pairs for a step, deterministic in (seed, step)."""
        flat = np.random.default_rng([self.seed, step]).integers(0, len(self), batch_size)
        return flat // self.starts_per_sequence, flat % self.starts_per_sequence

    def batch(self, step: int, batch_size: int) -> np.ndarray:
        seq, start = self.indices(step, batch_size)
        offs = start[:, None] + np.arange(self.length)[None]  # [B, L]
        return self.sequences[seq[:, None], offs]  # [B, L, ...]

    def fixed_windows(self, stride: int) -> np.ndarray:
        """Every window starting at a multiple of ``stride`` (for evaluation)."""
        starts = np.arange(0, self.starts_per_sequence, stride)
        offs = starts[:, None] + np.arange(self.length)[None]  # [S, L]
        w = self.sequences[:, offs]  # [N, S, L, ...]
        return w.reshape((-1,) + w.shape[2:])


DATASETS = ("waveeq", "waveeq100", "sst", "taxibj", "chairs", "mmnist")


def load_dataset(name: str, data_dir=None, **kwargs) -> dict[str, np.ndarray]:
    if name == "waveeq":
        return load_waveeq(data_dir, **kwargs)
    if name == "waveeq100":
        return load_waveeq100(data_dir, **kwargs)
    if name == "sst":
        return load_sst(data_dir or default_cache_dir(), **kwargs)
    if name == "taxibj":
        return load_taxibj(data_dir or default_cache_dir(), **kwargs)
    if name == "chairs":
        return load_chairs(data_dir or default_cache_dir(), **kwargs)
    if name == "mmnist":
        raise ValueError(
            "mmnist is streamed by physics.train (procedural Moving MNIST), not loaded here"
        )
    raise ValueError(f"unknown dataset {name!r}; valid choices: {list(DATASETS)}")
