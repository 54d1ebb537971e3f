"""Real video datasets: KTH and Human3.6M from a documented on-disk layout, BAIR through tfds.

Nothing is downloaded. Every loader returns float32 clips `[B, T, 64, 64, C]` in [0, 1].

On-disk layout (frames already cropped/resized to 64×64, uint8, gray `[T, 64, 64]` or colour
`[T, 64, 64, C]`); a video is either one `.npy` file (read memory-mapped) or a folder of image
files (`.png`/`.jpg`, sorted by name):

    KTH        <root>/<action>/person<NN>_<action>_d<K>[...].npy     actions: boxing, handclapping,
               (or a folder of that name)                             handwaving, jogging, running,
                                                                      walking; persons 1-20 train,
                                                                      21-25 test; 25 fps, gray
    Human3.6M  <root>/S<k>/<action>[...].npy  (or folder)             subjects 1,5,6,7,8 train, 9,11
                                                                      test; full frame rate, the
                                                                      loader keeps every 8th frame

To make such files from the raw releases: decode each video (e.g. with imageio), crop (Human3.6M:
the central square around the person), resize to 64×64 (e.g. `skimage.transform.resize`), and
`np.save(path, frames.astype(np.uint8))`.

BAIR: tensorflow-datasets `bair_robot_pushing_small` (`image_aux1`, 30 frames), prepared
beforehand with `tfds build bair_robot_pushing_small --data_dir DIR`; read with `download=False`.
"""

from __future__ import annotations

import pathlib
import re
from typing import NamedTuple

import numpy as np

__all__ = ["VideoFolder", "kth", "human36m", "bair", "DATASET_LAYOUTS", "MissingDatasetError"]

KTH_ACTIONS = ("boxing", "handclapping", "handwaving", "jogging", "running", "walking")
SPLITS = ("train", "test")
DATASET_LAYOUTS = {
    "kth": "<root>/<action>/person<NN>_<action>_d<K>*.npy (uint8 [T,64,64]) or folders of PNGs",
    "human": "<root>/S<k>/<action>*.npy (uint8 [T,64,64,3]) or folders of PNGs",
    "bair": "tensorflow-datasets bair_robot_pushing_small prepared in data_dir",
}


class MissingDatasetError(FileNotFoundError):
    """A dataset is not on disk; the message names the path and how to prepare it."""


class _Video(NamedTuple):
    path: pathlib.Path
    num_frames: int


def _read_frames(path: pathlib.Path, idx=None) -> np.ndarray:
    """Frames of one video (optionally a subset `idx`) as uint8 [T, H, W, C]."""
    if path.suffix == ".npy":
        arr = np.load(path, mmap_mode="r")
        arr = arr if idx is None else arr[idx]
        arr = np.asarray(arr)
    else:
        import imageio.v3 as iio

        files = _frame_files(path)
        files = files if idx is None else [files[i] for i in idx]
        arr = np.stack([iio.imread(f) for f in files])
    if arr.ndim == 3:
        arr = arr[..., None]
    return arr


def _frame_files(folder: pathlib.Path):
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))


def _num_frames(path: pathlib.Path) -> int:
    if path.suffix == ".npy":
        return int(np.load(path, mmap_mode="r").shape[0])
    return len(_frame_files(path))


class VideoFolder:
    """Random / fixed clips from videos on disk. Deterministic in (seed, step)."""

    def __init__(
        self, videos: list[_Video], seq_len: int, frame_stride: int, name: str, channels: int
    ):
        self.videos = [v for v in videos if (v.num_frames - 1) // frame_stride + 1 >= seq_len]
        if not self.videos:
            raise MissingDatasetError(
                f"{name}: no video has {seq_len} frames at stride {frame_stride}"
            )
        self.seq_len, self.frame_stride, self.name, self.channels = (
            seq_len,
            frame_stride,
            name,
            channels,
        )

    def __len__(self):
        return len(self.videos)

    def _clip(self, video: _Video, start: int) -> np.ndarray:
        idx = start + self.frame_stride * np.arange(self.seq_len)
        frames = _read_frames(video.path, idx)
        if frames.shape[1:3] != (64, 64):
            raise ValueError(
                f"{video.path}: frames are {frames.shape[1:3]}, expected (64, 64); "
                "resize them when preparing the dataset"
            )
        if frames.shape[-1] != self.channels:
            frames = (
                frames[..., :1].repeat(self.channels, -1)
                if frames.shape[-1] == 1
                else (frames[..., :3].mean(-1, keepdims=True))
            )
        return frames.astype(np.float32) / 255.0

    def _sample(self, rng: np.random.Generator, batch_size: int) -> np.ndarray:
        clips = []
        for _ in range(batch_size):
            v = self.videos[rng.integers(len(self.videos))]
            span = self.frame_stride * (self.seq_len - 1) + 1
            clips.append(self._clip(v, int(rng.integers(v.num_frames - span + 1))))
        return np.stack(clips)  # [B, T, 64, 64, C]

    def batch(self, seed: int, step: int, batch_size: int) -> np.ndarray:
        """Training batch number `step`: [B, T, 64, 64, C] float32 (same (seed, step), same batch)."""
        return self._sample(np.random.default_rng([seed, step]), batch_size)

    def test_clips(self, num_videos: int, seed: int = 42) -> np.ndarray:
        """A fixed evaluation set [N, T, 64, 64, C] float32 drawn with `seed`."""
        return self._sample(np.random.default_rng([seed, 2**31 - 1]), num_videos)


def _require_dir(root, name: str, how: str) -> pathlib.Path:
    if root is None:
        raise MissingDatasetError(f"{name}: no data_dir given; expected layout {how}")
    root = pathlib.Path(root).expanduser()
    if not root.is_dir():
        raise MissingDatasetError(
            f"{name}: dataset directory {root} does not exist; expected "
            f"layout {how} (see video/data/datasets.py)"
        )
    return root


def _entries(folder: pathlib.Path):
    return sorted(p for p in folder.iterdir() if p.suffix == ".npy" or p.is_dir())


def kth(root, split: str, seq_len: int, frame_stride: int = 1) -> VideoFolder:
    """KTH clips; persons 1-20 train, 21-25 test (gray, 1 channel)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split '{split}'; valid choices: {', '.join(SPLITS)}")
    root = _require_dir(root, "KTH", DATASET_LAYOUTS["kth"])
    persons = range(1, 21) if split == "train" else range(21, 26)
    videos = []
    for action in KTH_ACTIONS:
        folder = root / action
        if not folder.is_dir():
            continue
        for p in _entries(folder):
            m = re.match(r"person(\d+)_", p.name)
            if m and int(m.group(1)) in persons:
                videos.append(_Video(p, _num_frames(p)))
    if not videos:
        raise MissingDatasetError(
            f"KTH: no {split} video under {root}; expected layout {DATASET_LAYOUTS['kth']}"
        )
    return VideoFolder(videos, seq_len, frame_stride, "KTH", channels=1)


def human36m(root, split: str, seq_len: int, frame_stride: int = 8) -> VideoFolder:
    """Human3.6M clips; subjects 1,5,6,7,8 train, 9,11 test; every 8th frame (3 channels)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split '{split}'; valid choices: {', '.join(SPLITS)}")
    root = _require_dir(root, "Human3.6M", DATASET_LAYOUTS["human"])
    subjects = (1, 5, 6, 7, 8) if split == "train" else (9, 11)
    videos = []
    for s in subjects:
        folder = root / f"S{s}"
        if folder.is_dir():
            videos += [_Video(p, _num_frames(p)) for p in _entries(folder)]
    if not videos:
        raise MissingDatasetError(
            f"Human3.6M: no {split} video (subjects {subjects}) under "
            f"{root}; expected layout {DATASET_LAYOUTS['human']}"
        )
    return VideoFolder(videos, seq_len, frame_stride, "Human3.6M", channels=3)


class bair:  # noqa: N801 - reads like the other loader functions
    """BAIR robot pushing (`image_aux1`, 30 frames, RGB) from tensorflow-datasets, no download.

    `batch(seed, step, B)` is deterministic in the step index: the shuffled stream is re-created
    and skipped to `step` when the requested step is not the next one (i.e. after a resume).
    """

    def __init__(self, data_dir, split: str, seq_len: int):
        if split not in SPLITS:
            raise ValueError(f"unknown split '{split}'; valid choices: {', '.join(SPLITS)}")
        import tensorflow_datasets as tfds  # lazy: heavy import

        self.split, self.seq_len, self.data_dir = split, seq_len, data_dir
        try:
            self._builder = tfds.builder("bair_robot_pushing_small", data_dir=data_dir)
            self._builder.as_dataset(split=split)  # raises when not prepared
        except Exception as e:  # noqa: BLE001
            where = data_dir or "~/tensorflow_datasets"
            raise MissingDatasetError(
                f"BAIR: bair_robot_pushing_small is not prepared under {where} "
                f"({type(e).__name__}); run `tfds build bair_robot_pushing_small --data_dir "
                f"{where}` on a machine with internet"
            ) from None
        self._iter, self._next_step, self._key = None, None, None

    def _stream(self, seed: int, batch_size: int, shuffle: bool):
        import tensorflow as tf

        ds = self._builder.as_dataset(split=self.split, shuffle_files=False)
        ds = ds.map(lambda ex: ex["image_aux1"][: self.seq_len])
        if shuffle:
            ds = ds.repeat().shuffle(1024, seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size, drop_remainder=shuffle)
        opts = tf.data.Options()
        opts.deterministic = True
        return ds.with_options(opts)

    def batch(self, seed: int, step: int, batch_size: int) -> np.ndarray:
        """Training batch number `step`: [B, T, 64, 64, 3] float32."""
        if self._iter is None or self._key != (seed, batch_size) or self._next_step != step:
            ds = self._stream(seed, batch_size, shuffle=True).skip(step)
            self._iter, self._key = iter(ds.as_numpy_iterator()), (seed, batch_size)
        self._next_step = step + 1
        return np.asarray(next(self._iter), np.float32) / 255.0

    def test_clips(self, num_videos: int, seed: int = 42) -> np.ndarray:
        """The first `num_videos` test videos in file order, [N, T, 64, 64, 3] float32."""
        del seed  # the BAIR test set is fixed
        clips = []
        for b in self._stream(0, 64, shuffle=False).as_numpy_iterator():
            clips.append(b)
            if sum(len(c) for c in clips) >= num_videos:
                break
        return np.concatenate(clips)[:num_videos].astype(np.float32) / 255.0
