"""The digit classifier behind the Fréchet distance on digits (not Inception FID)."""

import numpy as np

from generative import classifier
from generative.data.digits import load_digits


def test_classifier_learns_the_digits_and_its_frechet_distance_tells_digits_from_noise():
    params, info = classifier.train_classifier(
        source="font", num_font_digits=300, steps=60, batch_size=64
    )
    assert info["test_accuracy"] > 0.7  # held-out font digits; chance is 0.1
    test = load_digits("test", "font", None, 600).images
    a, b = test[:300], test[300:]
    noise = np.random.default_rng(0).uniform(size=a.shape).astype(np.float32)
    same = classifier.classifier_frechet(a, b, params)
    other = classifier.classifier_frechet(a, noise, params)
    assert 0 <= same < 0.1 * other, (same, other)
