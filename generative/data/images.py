"""Small image sets: MNIST and CelebA as point clouds at 32×32 in [−1, 1]; CIFAR-10 splits.

All load through tensorflow-datasets with `download=False` (nothing is fetched at run time).
Prepare them once with `tfds build mnist` / `tfds build cifar10` / `tfds build celeb_a`
(CelebA needs its manual download, see the tfds catalogue), optionally under
`--data_dir DIR`. MNIST falls back to the offline font digits of `generative.data.digits` when
it is not prepared (`source="auto"`). `cifar10_images` gives a whole CIFAR-10 split in [0, 1]
with its labels (for the image models; not one of the point-cloud `IMAGE_DATASETS`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from generative.data.tfds_quiet import quiet_absl

__all__ = ["IMAGE_DATASETS", "ImageSet", "LabelledImages", "load_images", "cifar10_images"]

IMAGE_DATASETS = ("mnist", "celeb_a")


class ImageSet(NamedTuple):
    images: np.ndarray  # [n, size, size, channels] float32 in [-1, 1]
    source: str  # where the images came from, printed in the run's output


class LabelledImages(NamedTuple):
    images: np.ndarray  # [N, H, W, C] float32 in [0, 1]
    labels: np.ndarray  # [N] int32
    source: str  # where the images came from, printed in the run's output


def cifar10_images(split: str = "train", data_dir: str | None = None) -> LabelledImages:
    """A CIFAR-10 split ('train': 50 000, 'test': 10 000 images [N, 32, 32, 3] in [0, 1]) from
    tensorflow-datasets, never downloading (FileNotFoundError when it is not prepared)."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown CIFAR-10 split '{split}'; valid choices: train, test")
    import tensorflow_datasets as tfds  # lazy: heavy import

    try:
        with quiet_absl():
            ds = tfds.load("cifar10", split=split, data_dir=data_dir, download=False)
        batches = list(tfds.as_numpy(ds.batch(10000)))
    except Exception as e:  # noqa: BLE001 - tfds raises several kinds for "not prepared"
        where = data_dir or "~/tensorflow_datasets"
        raise FileNotFoundError(
            f"CIFAR-10 is not prepared under {where} ({type(e).__name__}); build it once with "
            f"`tfds build cifar10 --data_dir {where}` on a machine with internet"
        ) from None
    images = np.concatenate([b["image"] for b in batches]).astype(np.float32) / 255.0
    labels = np.concatenate([b["label"] for b in batches]).astype(np.int32)
    origin = f"CIFAR-10 {split} (tensorflow-datasets, {data_dir or 'default data_dir'})"
    return LabelledImages(images, labels, origin)


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """[n, h, w, c] -> [n, size, size, c], bilinear with antialiasing."""
    import jax
    import jax.numpy as jnp

    n, _, _, c = images.shape
    out = jax.image.resize(jnp.asarray(images), (n, size, size, c), "linear", antialias=True)
    return np.asarray(out, np.float32)


def load_images(
    name: str,
    n: int,
    *,
    seed: int = 0,
    size: int = 32,
    data_dir: str | None = None,
    source: str = "auto",
) -> ImageSet:
    """`n` training images of `name`, picked at random with `seed`, scaled to [−1, 1]."""
    rng = np.random.default_rng(seed)
    if name == "mnist":
        from generative.data.digits import load_digits

        digits = load_digits("train", source, data_dir, num_font_digits=max(n, 1000))
        idx = rng.choice(len(digits.images), n, replace=False)
        images = digits.images[idx][..., None].astype(np.float32)  # [n, 28, 28, 1] in [0, 1]
        return ImageSet(_resize(images, size) * 2 - 1, digits.source)
    if name == "celeb_a":
        import tensorflow_datasets as tfds

        try:
            with quiet_absl():
                ds = tfds.load("celeb_a", split="train", data_dir=data_dir, download=False)
        except Exception:  # noqa: BLE001 - tfds raises several kinds for "not prepared"
            where = data_dir or "the default tensorflow-datasets folder (~/tensorflow_datasets)"
            raise FileNotFoundError(
                f"CelebA is not prepared under {where}; build it once with "
                "`tfds build celeb_a` (manual download, see the tfds catalogue) and pass its "
                "folder as data.data_dir"
            ) from None
        total = int(ds.cardinality())
        wanted = set(rng.choice(total, min(n, total), replace=False).tolist())
        stream = enumerate(tfds.as_numpy(ds.take(max(wanted) + 1)))
        picked = [ex["image"] for i, ex in stream if i in wanted]
        images = np.stack(picked).astype(np.float32) / 255.0  # [n, 218, 178, 3]
        h, w = images.shape[1:3]
        top, left = (h - 140) // 2, (w - 140) // 2  # the usual 140×140 centre crop
        images = images[:, top : top + 140, left : left + 140]
        origin = f"CelebA (tensorflow-datasets, {data_dir or 'default data_dir'})"
        return ImageSet(_resize(images, size) * 2 - 1, origin)
    raise ValueError(f"unknown image dataset '{name}'; valid: {', '.join(IMAGE_DATASETS)}")
