import numpy as np
import pytest

from generative.core import config as config_lib
from generative.core.train import make_optimizer, make_schedule


def _opt(**kw):
    c = config_lib.base_config().optimizer
    c.update(kw)
    return c


def test_constant_then_linear_decay_exact():
    s = make_schedule(_opt(lr=2.0, schedule="constant_then_linear_decay", decay_steps=10), 30)
    np.testing.assert_allclose(
        [float(s(i)) for i in (0, 19, 20, 25, 30)], [2, 2, 2, 1, 0], atol=1e-6
    )


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "rmsprop"])
def test_optimizers_build(name):
    tx = make_optimizer(_opt(name=name, grad_clip=1.0), 10)
    assert tx.init({"w": np.zeros(3)}) is not None


def test_unknown_optimizer_and_schedule():
    with pytest.raises(config_lib.ConfigError, match="valid: adam, adamw, sgd, rmsprop"):
        make_optimizer(_opt(name="lion"), 10)
    with pytest.raises(config_lib.ConfigError, match="valid: constant, constant_then_linear_decay"):
        make_schedule(_opt(schedule="step"), 10)
