"""A small convolutional digit classifier, trained here, and a Fréchet distance on its features.

`classifier_frechet(samples, reference)` is the Fréchet distance between Gaussians fitted to
the penultimate-layer features (128 ReLU units) of `DigitClassifier` on two sets of 28×28
digit images (`generative.metrics.frechet_distance`):

    ‖μ_s − μ_r‖² + tr(Σ_s + Σ_r − 2 (Σ_s Σ_r)^{1/2}).

It is an FID-style score on features of a classifier trained in this library on the digits
the models see (MNIST when prepared, else the offline font digits); it is NOT the Inception
FID and its values are not comparable with published FIDs, nor between classifiers trained on
different digit sources or settings.

Classifier: 3×3 stride-2 convolutions (32 then 64 channels, ReLU; 28 -> 14 -> 7), a 128-unit
ReLU layer (the features), a 10-way linear output; cross-entropy, Adam, `steps` steps of
`batch_size` digits from `generative.data.digits.load_digits("train", source)`, batches from
a permutation per epoch drawn from the seed (deterministic). `load_or_train` caches the
parameters on disk (`<cache_dir>/digit_classifier-<hash>.msgpack`, default cache_dir
~/.cache/generative, hash of the resolved source and all settings), so evaluations do not
retrain.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import pathlib
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from generative.layers import Conv, Dense

__all__ = [
    "DigitClassifier",
    "train_classifier",
    "load_or_train",
    "classifier_features",
    "classifier_frechet",
    "default_cache_dir",
]

logger = logging.getLogger(__name__)

_VERSION = 1  # bump when the network or the training recipe changes (invalidates caches)


class DigitClassifier(nn.Module):
    """x [N, 28, 28] or [N, 28, 28, 1] in [0, 1] -> logits [N, 10] (and features [N, 128])."""

    nf: int = 32
    features: int = 128

    @nn.compact
    def __call__(self, x, return_features: bool = False):
        if x.ndim == 3:
            x = x[..., None]
        if x.shape[1:] != (28, 28, 1):
            raise ValueError(f"DigitClassifier takes 28×28 grey digits, got shape {x.shape}")
        h = nn.relu(Conv(self.nf, (3, 3), (2, 2), padding="SAME")(x))  # 14×14
        h = nn.relu(Conv(2 * self.nf, (3, 3), (2, 2), padding="SAME")(h))  # 7×7
        feats = nn.relu(Dense(self.features)(h.reshape(h.shape[0], -1)))
        logits = Dense(10)(feats)
        return (logits, feats) if return_features else logits


def default_cache_dir() -> pathlib.Path:
    """$GENERATIVE_CACHE_DIR, else ~/.cache/generative."""
    env = os.environ.get("GENERATIVE_CACHE_DIR")
    return pathlib.Path(env) if env else pathlib.Path.home() / ".cache" / "generative"


def _resolve_source(source: str, data_dir: str | None) -> str:
    from generative.data import digits

    if source not in digits.DIGIT_SOURCES:
        raise ValueError(
            f"unknown digit source '{source}'; valid choices: {', '.join(digits.DIGIT_SOURCES)}"
        )
    if source == "auto":
        return "mnist" if digits._mnist_prepared(data_dir) else "font"
    return source


def train_classifier(
    source: str = "auto",
    data_dir: str | None = None,
    num_font_digits: int | None = None,
    steps: int = 500,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
) -> tuple[Any, dict]:
    """Train `DigitClassifier` on the training digits -> (params, info). info holds the
    digits' origin ("data") and the test-split accuracy."""
    from generative.data.digits import load_digits

    train = load_digits("train", source, data_dir, num_font_digits)
    test = load_digits("test", source, data_dir, num_font_digits)
    model = DigitClassifier()
    params = model.init(jax.random.PRNGKey(seed), jnp.zeros((1, 28, 28)))["params"]
    tx = optax.adam(lr)

    @jax.jit
    def step(params, opt_state, x, y):
        def loss_fn(p):
            logits = model.apply({"params": p}, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    opt_state = tx.init(params)
    n = len(train.images)
    per_epoch = max(1, n // batch_size)
    perm = None
    loss = jnp.nan
    for i in range(steps):
        epoch, j = divmod(i, per_epoch)
        if j == 0:
            perm = np.random.default_rng([seed, epoch]).permutation(n)
        idx = perm[j * batch_size : (j + 1) * batch_size]
        params, opt_state, loss = step(
            params, opt_state, jnp.asarray(train.images[idx]), jnp.asarray(train.labels[idx])
        )
    logits = _apply_batched(model, params, test.images, return_features=False)
    accuracy = float(np.mean(np.argmax(logits, -1) == test.labels))
    info = {
        "data": train.source,
        "test_accuracy": accuracy,
        "final_loss": float(loss),
        "steps": steps,
    }
    logger.info(
        "digit classifier trained (%d steps on %s): test accuracy %.4f",
        steps,
        train.source,
        accuracy,
    )
    return params, info


def load_or_train(
    source: str = "auto",
    data_dir: str | None = None,
    num_font_digits: int | None = None,
    steps: int = 500,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
) -> Any:
    """The classifier's parameters for these settings: read from the cache, or trained and
    written there (with a JSON file of the settings and test accuracy beside them)."""
    from flax import serialization

    settings = {
        "version": _VERSION,
        "source": _resolve_source(source, data_dir),
        "data_dir": str(data_dir or ""),
        "num_font_digits": int(num_font_digits or 0),
        "steps": int(steps),
        "batch_size": int(batch_size),
        "lr": float(lr),
        "seed": int(seed),
    }
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    folder = pathlib.Path(cache_dir) if cache_dir else default_cache_dir()
    path = folder / f"digit_classifier-{digest}.msgpack"
    template = DigitClassifier().init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28)))["params"]
    if path.exists():
        try:
            return serialization.from_bytes(template, path.read_bytes())
        except Exception as e:  # noqa: BLE001 - a damaged cache file is retrained
            logger.warning("ignoring unreadable classifier cache %s (%s)", path, type(e).__name__)
    params, info = train_classifier(
        settings["source"], data_dir, num_font_digits or None, steps, batch_size, lr, seed
    )
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(serialization.to_bytes(params))
    tmp.replace(path)
    path.with_suffix(".json").write_text(json.dumps({**settings, **info}, indent=2) + "\n")
    logger.info("digit classifier cached in %s", path)
    return params


@functools.lru_cache(maxsize=4)
def _jitted(model: DigitClassifier, return_features: bool):
    def f(params, x):
        out = model.apply({"params": params}, x, return_features=True)
        return out[1] if return_features else out[0]

    return jax.jit(f)


def _apply_batched(model, params, images, return_features: bool, batch: int = 500) -> np.ndarray:
    images = np.asarray(images, np.float32)
    n = len(images)
    if n == 0:
        raise ValueError("no images given to the digit classifier")
    batch = min(batch, n)
    pad = (-n) % batch
    if pad:
        images = np.concatenate([images, np.repeat(images[-1:], pad, 0)])
    f = _jitted(model, return_features)
    out = [
        np.asarray(f(params, jnp.asarray(images[i : i + batch])))
        for i in range(0, len(images), batch)
    ]
    return np.concatenate(out)[:n]


def classifier_features(params, images, batch: int = 500) -> np.ndarray:
    """Penultimate-layer features [N, 128] of `DigitClassifier` for images [N, 28, 28(, 1)]."""
    return _apply_batched(DigitClassifier(), params, images, True, batch)


def classifier_frechet(samples, reference, params=None, *, batch: int = 500, **settings) -> float:
    """Fréchet distance between the classifier features of `samples` and of `reference`
    (digit images [N, 28, 28(, 1)] in [0, 1]); `params` from `load_or_train(**settings)` when
    not given. A distance on features of a classifier trained here, NOT Inception FID."""
    from generative.metrics import frechet_distance

    if params is None:
        params = load_or_train(**settings)
    fs = classifier_features(params, samples, batch)
    fr = classifier_features(params, reference, batch)
    return float(frechet_distance(fs, fr))
