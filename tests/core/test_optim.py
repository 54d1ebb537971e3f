"""The optimizer factory against update rules written out in numpy (optax's documented
formulas), and the learning-rate schedules against their closed forms."""

import math

import jax
import numpy as np
import pytest

from generative.core import config as config_lib
from generative.core.train import make_optimizer, make_schedule

GRADS = [  # three steps of gradients for a two-leaf parameter tree
    {"w": np.array([0.3, -1.2, 2.0], np.float32), "b": np.array([0.5, -0.1], np.float32)},
    {"w": np.array([-0.7, 0.4, 1.1], np.float32), "b": np.array([0.2, 0.9], np.float32)},
    {"w": np.array([0.1, 0.1, -3.0], np.float32), "b": np.array([-1.5, 0.3], np.float32)},
]
PARAMS = {"w": np.array([1.0, -2.0, 0.5], np.float32), "b": np.array([0.25, 3.0], np.float32)}


def _opt(**kw):
    c = config_lib.base_config().optimizer
    c.update(kw)
    return c


def _run(opt, num_steps=10, grads=GRADS):
    """Updates (as numpy trees) of `len(grads)` steps from PARAMS."""
    tx = make_optimizer(opt, num_steps)
    params, state, out = PARAMS, tx.init(PARAMS), []
    for g in grads:
        u, state = tx.update(g, state, params)
        u = jax.tree_util.tree_map(np.asarray, u)
        params = jax.tree_util.tree_map(lambda p, d: p + d, params, u)
        out.append(u)
    return out


def _assert_updates(got, want, rtol=2e-5):
    for g, w in zip(got, want, strict=True):
        for k in ("w", "b"):
            np.testing.assert_allclose(g[k], w[k], rtol=rtol, atol=1e-7)


def _adam_reference(lr, b1, b2, weight_decay=0.0, eps=1e-8):
    p = {k: v.astype(np.float64) for k, v in PARAMS.items()}
    m = {k: 0.0 for k in p}
    v = {k: 0.0 for k in p}
    out = []
    for t, g in enumerate(GRADS, 1):
        u = {}
        for k in p:
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
            m_hat, v_hat = m[k] / (1 - b1**t), v[k] / (1 - b2**t)
            u[k] = -lr * (m_hat / (np.sqrt(v_hat) + eps) + weight_decay * p[k])  # decoupled
        p = {k: p[k] + u[k] for k in p}
        out.append(u)
    return out


def test_adam_matches_the_update_rule():
    got = _run(_opt(name="adam", lr=0.01, b1=0.8, b2=0.95))
    _assert_updates(got, _adam_reference(0.01, 0.8, 0.95))


def test_adamw_decays_weights_decoupled_from_the_moments():
    got = _run(_opt(name="adamw", lr=0.01, b1=0.8, b2=0.95, weight_decay=0.3))
    want = _adam_reference(0.01, 0.8, 0.95, weight_decay=0.3)
    _assert_updates(got, want)
    # the decay is lr · wd · w, outside the Adam normalisation (not L2 added to the gradient)
    plain = _adam_reference(0.01, 0.8, 0.95)
    np.testing.assert_allclose(
        got[0]["w"] - plain[0]["w"], -0.01 * 0.3 * PARAMS["w"], rtol=1e-4, atol=1e-7
    )


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_with_and_without_momentum(momentum):
    trace = {k: 0.0 for k in PARAMS}
    want = []
    for g in GRADS:
        trace = {k: g[k] + momentum * trace[k] for k in g}
        want.append({k: -0.1 * trace[k] for k in g})
    _assert_updates(_run(_opt(name="sgd", lr=0.1, momentum=momentum)), want)


def test_rmsprop_matches_the_update_rule():
    nu = {k: 0.0 for k in PARAMS}
    trace = {k: 0.0 for k in PARAMS}
    want = []
    for g in GRADS:  # decay 0.9, eps 1e-8 inside the square root, momentum on the step
        nu = {k: 0.9 * nu[k] + 0.1 * g[k].astype(np.float64) ** 2 for k in g}
        step = {k: -0.05 * g[k] / np.sqrt(nu[k] + 1e-8) for k in g}
        trace = {k: step[k] + 0.5 * trace[k] for k in g}
        want.append(dict(trace))
    _assert_updates(_run(_opt(name="rmsprop", lr=0.05, momentum=0.5)), want)


def test_gradient_clipping_by_global_norm():
    big = {k: 10.0 * v for k, v in GRADS[0].items()}
    small = {k: 0.01 * v for k, v in GRADS[1].items()}
    got = _run(_opt(name="sgd", lr=1.0, grad_clip=2.0), grads=[big, small])
    norm = np.sqrt(sum(np.sum(v.astype(np.float64) ** 2) for v in big.values()))
    assert norm > 2.0 and np.sqrt(sum(np.sum(v**2) for v in small.values())) < 2.0
    want = [{k: -v * 2.0 / norm for k, v in big.items()}, {k: -v for k, v in small.items()}]
    _assert_updates(got, want)
    clipped = np.sqrt(sum(np.sum(v.astype(np.float64) ** 2) for v in got[0].values()))
    np.testing.assert_allclose(clipped, 2.0, rtol=1e-6)
    # grad_clip=0 disables clipping
    _assert_updates(_run(_opt(name="sgd", lr=1.0), grads=[big]), [{k: -v for k, v in big.items()}])


def _values(opt, num_steps, steps):
    s = make_schedule(opt, num_steps)
    return [float(s(i)) for i in steps]


def test_constant_then_linear_decay_exact():
    s = _opt(lr=2.0, schedule="constant_then_linear_decay", decay_steps=10)
    np.testing.assert_allclose(_values(s, 30, (0, 19, 20, 25, 30)), [2, 2, 2, 1, 0], atol=1e-6)
    # decay_steps=0: the last tenth of the run
    s = _opt(lr=2.0, schedule="constant_then_linear_decay", decay_steps=0)
    np.testing.assert_allclose(_values(s, 50, (44, 45, 46, 50)), [2, 2, 1.6, 0], atol=1e-6)


def test_cosine_schedule_closed_form():
    steps = (0, 10, 25, 37, 50, 60)
    want = [0.3 * 0.5 * (1 + math.cos(math.pi * min(t, 50) / 50)) for t in steps]
    np.testing.assert_allclose(_values(_opt(lr=0.3, schedule="cosine"), 50, steps), want, atol=1e-7)


def test_warmup_cosine_schedule_closed_form():
    opt = _opt(lr=0.3, schedule="warmup_cosine", warmup_steps=10)
    steps = (0, 1, 5, 10, 20, 35, 50)

    def closed(t, total=50, warm=10):
        if t < warm:
            return 0.3 * t / warm
        return 0.3 * 0.5 * (1 + math.cos(math.pi * (t - warm) / (total - warm)))

    np.testing.assert_allclose(_values(opt, 50, steps), [closed(t) for t in steps], atol=1e-7)


def test_optimizer_steps_follow_the_schedule():
    opt = _opt(name="sgd", lr=0.3, schedule="warmup_cosine", warmup_steps=2)
    got = _run(opt, num_steps=6)
    lrs = _values(opt, 6, range(3))  # update k uses the rate at step k
    np.testing.assert_allclose(lrs, [0.0, 0.15, 0.3], atol=1e-7)
    _assert_updates(got, [{k: -lr * v for k, v in g.items()} for lr, g in zip(lrs, GRADS)])


def test_every_name_builds_and_unknown_ones_are_refused():
    for name in config_lib.OPTIMIZERS:
        make_optimizer(_opt(name=name), 10)
    for schedule in config_lib.SCHEDULES:
        make_schedule(_opt(schedule=schedule), 10)
    with pytest.raises(config_lib.ConfigError, match="valid: adam, adamw, sgd, rmsprop"):
        make_optimizer(_opt(name="lion"), 10)
    with pytest.raises(config_lib.ConfigError, match="valid: constant, constant_then_linear_decay"):
        make_schedule(_opt(schedule="step"), 10)
