"""APHYNITY: loss terms, the adaptive multiplier rule, parameter recovery, the CLI table."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physics import aphynity as A
from physics import simulators as sim


@pytest.fixture(scope="module")
def pendulum():
    return A.make_problem("pendulum", num_train=4, num_test=2, seed=0)


def test_physics_only_loss_matches_independent_frictionless_integration(pendulum):
    model = A.HybridModel(pendulum, use_physics=True, use_augmentation=False)
    params = model.init(jax.random.PRNGKey(0))
    params["physics"]["omega"] = jnp.log(jnp.float32(0.4))
    batch = jnp.asarray(pendulum.train[:2])
    ts = jnp.asarray(pendulum.ts)
    loss, (l_traj, norm) = A.aphynity_loss(model, params, batch, ts, 3.0, 1.0)
    ref = np.moveaxis(
        np.asarray(sim.simulate_pendulum(batch[:, 0], ts, omega0=0.4, alpha=0.0, dt=pendulum.dt)),
        0,
        1,
    )
    np.testing.assert_allclose(l_traj, np.mean((ref - np.asarray(batch)) ** 2), rtol=1e-4)
    assert float(norm) == 0.0
    np.testing.assert_allclose(loss, 3.0 * l_traj, rtol=1e-6)


def test_augmentation_norm_term(pendulum):
    model = A.HybridModel(pendulum)
    params = model.init(jax.random.PRNGKey(1))
    batch = jnp.asarray(pendulum.train[:2, :5])
    loss, (l_traj, norm) = A.aphynity_loss(
        model, params, batch, jnp.asarray(pendulum.ts[:5]), 2.0, 1.0
    )
    fa = pendulum.augmentation.apply(params["aug"], batch.reshape(-1, 2))
    np.testing.assert_allclose(norm, np.mean(np.asarray(fa) ** 2), rtol=1e-5)
    np.testing.assert_allclose(loss, norm + 2.0 * l_traj, rtol=1e-5)


def test_adaptive_multiplier_rule(pendulum):
    _, _, hist = A.fit(
        pendulum, "aphynity", steps=3, lambda0=0.5, tau=7.0, lambda_every=1, batch_size=2, window=5
    )
    expect = 0.5 + 7.0 * np.cumsum(hist["l_traj"])
    np.testing.assert_allclose(hist["lambda"], expect, rtol=1e-6)
    _, _, fixed = A.fit(
        pendulum,
        "physics+data",
        steps=3,
        lambda0=0.5,
        tau=7.0,
        lambda_every=1,
        batch_size=2,
        window=5,
    )
    assert fixed["lambda"] == [0.5] * 3


def test_physics_only_recovers_omega_on_frictionless_data():
    ts = np.arange(0, 10.0 + 1e-9, 0.5)
    y0 = np.array([[1.0, 0.0], [0.5, 0.3], [-0.8, 0.1]], np.float32)
    ys = np.moveaxis(
        np.asarray(sim.simulate_pendulum(y0, ts, omega0=0.6, alpha=0.0, dt=0.01)), 0, 1
    )
    base = A.make_problem("pendulum", num_train=1, num_test=1)
    problem = dataclasses.replace(
        base,
        train=ys,
        test=ys,
        ts=ts.astype(np.float32),
        true_params={"omega": 0.6},
        init_params={"omega": np.log(0.5)},
    )
    model, params, _ = A.fit(problem, "physics", steps=150, lr=3e-3, physics_lr_scale=10.0)
    res = A.evaluate_model(model, params)
    assert res["param_error_pct"] < 0.5, res
    assert res["forecast_mse"] < 1e-4, res


def test_cli_writes_table(tmp_path):
    from physics.main import main

    rc = main(
        [
            "aphynity",
            "--config",
            "aphynity_tiny",
            "--workdir",
            str(tmp_path),
            "aphynity.methods=data,aphynity",
        ]
    )
    assert rc == 0
    rows = (tmp_path / "aphynity.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2
    md = (tmp_path / "aphynity.md").read_text()
    for m in ("data", "aphynity"):
        assert f"| pendulum | {m} |" in md


def test_bad_names():
    with pytest.raises(ValueError, match="unknown APHYNITY data set 'foo'"):
        A.make_problem("foo")
    with pytest.raises(ValueError, match="unknown APHYNITY method 'bar'.*aphynity"):
        A._method(None, "bar")
