"""28×28 digits (Moving MNIST, gantk image flows): MNIST via tensorflow-datasets, or fonts.

MNIST is read with `download=False` only (nothing is fetched at run time). When it is not
prepared on disk, `source="auto"` falls back to digits rendered from the TrueType fonts that
matplotlib ships (DejaVu, STIX, Computer Modern), each glyph drawn once at 4× resolution,
centred by centre of mass like MNIST, then varied by a random affine map (rotation, shear,
anisotropic scale, shift) and a stroke-thickness change (grey erosion/dilation). Train and
test digits come from disjoint random streams, so no test digit image appears in training.
"""

from __future__ import annotations

import functools
import pathlib
from typing import NamedTuple

import numpy as np

from generative.data.tfds_quiet import quiet_absl

__all__ = ["DigitSet", "load_digits", "font_digits", "mnist_digits", "DIGIT_SOURCES"]

DIGIT_SOURCES = ("auto", "mnist", "font")
SPLITS = ("train", "test")

# Fonts bundled with matplotlib (mpl-data/fonts/ttf) used by the offline source.
_FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "cmr10.ttf",
    "cmss10.ttf",
    "cmtt10.ttf",
)
_HIRES = 112  # 4 × 28: glyphs are drawn and transformed at this size, then box-averaged
_BOX = 80  # glyph fitted in an 80×80 box of the 112 canvas (MNIST: 20×20 box in 28×28)
# Stroke-thickness variants: grey erosion (<0) / dilation (>0) footprint at 4× resolution.
_THICKNESS = (-5, -3, 0, 3, 5, 7)
# Default number of offline digits per split (MNIST has 60000 / 10000).
FONT_DIGITS_PER_SPLIT = {"train": 20000, "test": 5000}


class DigitSet(NamedTuple):
    images: np.ndarray  # [N, 28, 28] float32 in [0, 1]
    labels: np.ndarray  # [N] int32, the digit class
    source: str  # human-readable origin, printed in the run's output


def _check(name: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} '{value}'; valid choices: {', '.join(choices)}")


def load_digits(
    split: str = "train",
    source: str = "auto",
    data_dir: str | None = None,
    num_font_digits: int | None = None,
) -> DigitSet:
    """Digits of one split from `source` ('auto': MNIST if prepared in `data_dir`, else fonts)."""
    _check("split", split, SPLITS)
    _check("digit source", source, DIGIT_SOURCES)
    if source == "auto":
        source = "mnist" if _mnist_prepared(data_dir) else "font"
    if source == "mnist":
        return mnist_digits(split, data_dir)
    n = num_font_digits or FONT_DIGITS_PER_SPLIT[split]
    return font_digits(split, n)


def _mnist_prepared(data_dir: str | None) -> bool:
    import tensorflow_datasets as tfds  # lazy: heavy import

    try:
        with quiet_absl():
            return tfds.builder("mnist", data_dir=data_dir).is_prepared()
    except Exception:  # noqa: BLE001 - any failure means "not usable", the font source is used
        return False


def mnist_digits(split: str, data_dir: str | None = None) -> DigitSet:
    """MNIST `split` from tensorflow-datasets, never downloading."""
    _check("split", split, SPLITS)
    import tensorflow_datasets as tfds  # lazy: heavy import

    try:
        with quiet_absl():
            data = tfds.load(
                "mnist", split=split, data_dir=data_dir, download=False, as_supervised=True
            )
        batches = list(tfds.as_numpy(data.batch(8192)))
        images = np.concatenate([b[0] for b in batches])
        labels = np.concatenate([b[1] for b in batches])
    except Exception as e:  # tfds raises AssertionError / DatasetNotFoundError variants
        where = data_dir or "~/tensorflow_datasets"
        raise FileNotFoundError(
            f"MNIST is not prepared under {where} ({type(e).__name__}); prepare it with "
            f"`tfds build mnist --data_dir {where}` on a machine with internet, or use "
            "the offline font digits (source 'font')"
        ) from None
    images = np.asarray(images, np.float32)[..., 0] / 255.0  # [N, 28, 28]
    return DigitSet(images, np.asarray(labels, np.int32), f"MNIST {split} (tensorflow-datasets)")


@functools.lru_cache(maxsize=1)
def _glyph_bank() -> tuple[np.ndarray, np.ndarray]:
    """Every (font, digit, thickness) glyph at 4× resolution: [G, 112, 112] float32, labels [G]."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from scipy import ndimage

    font_dir = pathlib.Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    glyphs, labels = [], []
    for font_file in _FONT_FILES:
        path = font_dir / font_file
        if not path.exists():
            continue
        prop = FontProperties(fname=str(path))
        for digit in range(10):
            fig = Figure(figsize=(2, 2), dpi=100)
            canvas = FigureCanvasAgg(fig)
            fig.text(
                0.5,
                0.5,
                str(digit),
                fontproperties=prop,
                fontsize=100,
                ha="center",
                va="center",
                color="black",
            )
            canvas.draw()
            ink = 1.0 - np.asarray(canvas.buffer_rgba(), np.float32)[..., 0] / 255.0  # [200, 200]
            rows, cols = np.nonzero(ink > 0.05)
            ink = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            zoom = _BOX / max(ink.shape)
            ink = np.clip(ndimage.zoom(ink, zoom, order=1), 0.0, 1.0)
            canvas_hi = np.zeros((_HIRES, _HIRES), np.float32)
            # centre of mass at the canvas centre (MNIST convention)
            com = np.array(ndimage.center_of_mass(ink))
            top_left = np.round(_HIRES / 2 - com).astype(int)
            top_left = np.clip(top_left, 0, _HIRES - np.array(ink.shape))
            canvas_hi[
                top_left[0] : top_left[0] + ink.shape[0], top_left[1] : top_left[1] + ink.shape[1]
            ] = ink
            for t in _THICKNESS:
                if t < 0:
                    g = ndimage.grey_erosion(canvas_hi, size=(-t, -t))
                elif t > 0:
                    g = ndimage.grey_dilation(canvas_hi, size=(t, t))
                else:
                    g = canvas_hi
                glyphs.append(g)
                labels.append(digit)
    return np.stack(glyphs).astype(np.float32), np.asarray(labels, np.int32)


@functools.partial(__import__("jax").jit, static_argnums=(2,))
def _transform_glyphs(glyphs, key, n):
    """n random affine variants of randomly chosen glyphs, box-averaged to 28×28."""
    import jax
    import jax.numpy as jnp

    k_idx, k_rot, k_shear, k_scale, k_shift = jax.random.split(key, 5)
    idx = jax.random.randint(k_idx, (n,), 0, glyphs.shape[0])
    rot = jax.random.uniform(k_rot, (n,), minval=-0.2, maxval=0.2)  # radians (±11°)
    shear = jax.random.uniform(k_shear, (n,), minval=-0.2, maxval=0.2)
    scale = jax.random.uniform(k_scale, (n, 2), minval=0.8, maxval=1.0)
    shift = jax.random.uniform(k_shift, (n, 2), minval=-4.0, maxval=4.0)  # 4× pixels
    c = (_HIRES - 1) / 2.0
    grid = jnp.stack(jnp.meshgrid(jnp.arange(_HIRES), jnp.arange(_HIRES), indexing="ij"), 0)
    grid = grid.reshape(2, -1).astype(jnp.float32) - c  # [2, P] output coordinates

    def one(i, r, s, sc, sh):
        cos, sin = jnp.cos(r), jnp.sin(r)
        a = jnp.array([[cos, -sin], [sin, cos]]) @ jnp.array([[1.0, s], [0.0, 1.0]])
        a = a @ jnp.diag(sc)
        src = jnp.linalg.solve(a, grid - sh[:, None]) + c  # inverse map: output -> source
        img = jax.scipy.ndimage.map_coordinates(glyphs[i], [src[0], src[1]], order=1, cval=0.0)
        img = img.reshape(_HIRES // 4, 4, _HIRES // 4, 4).mean(axis=(1, 3))  # [28, 28]
        return jnp.clip(img, 0.0, 1.0)

    # in chunks of 256 digits: one vmap over all n would hold n × 112² coordinates and
    # interpolation weights at once (about 11 GB for 20 000 digits)
    return jax.lax.map(lambda a: one(*a), (idx, rot, shear, scale, shift), batch_size=256), idx


@functools.lru_cache(maxsize=4)
def font_digits(split: str, n: int) -> DigitSet:
    """`n` offline digits rendered from matplotlib's bundled fonts; train/test streams disjoint."""
    _check("split", split, SPLITS)
    import jax

    glyphs, glyph_labels = _glyph_bank()
    key = jax.random.fold_in(jax.random.PRNGKey(20200713), SPLITS.index(split))
    images, idx = _transform_glyphs(glyphs, key, n)
    images, idx = np.asarray(images, np.float32), np.asarray(idx)
    return DigitSet(
        images,
        glyph_labels[idx],
        f"offline font digits {split} ({n} from {len(glyphs) // 10 // len(_THICKNESS)} "
        f"matplotlib fonts × {len(_THICKNESS)} stroke widths, random affine)",
    )
