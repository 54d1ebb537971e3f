"""APHYNITY: loss terms, the adaptive multiplier rule, training on the shared loop (resume,
non-finite stop), parameter recovery, the CLI table."""

import csv
import dataclasses
import re
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from derivative_checks import (
    hessian_matches_differences_of_gradients,
    jvp_matches_central_differences,
)

from generative.core import sharding
from generative.core.checkpoint import Checkpointer
from generative.core.train import NonFiniteError, run
from physics import aphynity as A
from physics import simulators as sim
from physics.main import main


@pytest.fixture(scope="module")
def pendulum():
    return A.make_problem("pendulum", num_train=4, num_test=2, seed=0)


def _config(num_steps, **aphynity):
    c = A.fit_config()
    c.num_steps = num_steps
    c.log_every = c.checkpoint_every = num_steps
    c.progress = False
    c.aphynity.update(aphynity)
    return c


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


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


def _numpy_hybrid_traj_mse(params, data, ts, dt):
    """Mean squared error of RK4 trajectories of frictionless pendulum + tanh MLP, in float64."""
    p = jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), params)
    omega = np.exp(p["physics"]["omega"])
    layers = [p["aug"]["params"][f"Dense_{i}"] for i in range(3)]

    def field(x):
        h = x
        for i, layer in enumerate(layers):
            h = h @ layer["kernel"] + layer["bias"]
            h = np.tanh(h) if i < 2 else h
        return np.stack([x[:, 1], -(omega**2) * np.sin(x[:, 0])], -1) + h

    x, out = data[:, 0].astype(np.float64), [data[:, 0]]
    per_obs = int(round((ts[1] - ts[0]) / dt))
    for _ in range(len(ts) - 1):
        for _ in range(per_obs):
            k1 = field(x)
            k2 = field(x + dt / 2 * k1)
            k3 = field(x + dt / 2 * k2)
            k4 = field(x + dt * k3)
            x = x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        out.append(x)
    return np.mean((np.stack(out, 1) - data) ** 2)


@pytest.mark.parametrize("name", ["pendulum", "wave"])
def test_forward_mode_through_the_aphynity_loss(name):
    """jax.jvp (and, with the MLP F_a, jax.hessian) run through the APHYNITY objective (RK4
    rollout of the hybrid field, MLP or convolutional F_a) and agree with central finite
    differences in float64."""
    from jax.flatten_util import ravel_pytree

    kwargs = {"size": 8} if name == "wave" else {}
    problem = A.make_problem(name, num_train=2, num_test=1, seed=0, hidden=4, **kwargs)
    model = A.HybridModel(problem)
    with jax.enable_x64(True):
        params = jax.tree_util.tree_map(
            lambda a: jnp.asarray(a, jnp.float64), model.init(jax.random.PRNGKey(0))
        )
        flat, unravel = ravel_pytree(params)
        batch = jnp.asarray(problem.train[:, :4], jnp.float64)
        ts = jnp.asarray(problem.ts[:4], jnp.float64)
        f = jax.jit(lambda p: A.aphynity_loss(model, unravel(p), batch, ts, 2.0, 1.0)[0])
        rng = np.random.default_rng(1)
        d1, d2 = (jnp.asarray(rng.normal(size=flat.shape)) * 0.1 for _ in range(2))
        jvp_matches_central_differences(f, flat, (d1, d2))
        if name == "pendulum":
            hessian_matches_differences_of_gradients(f, flat, d1, d2)


def test_lambda_update_rule(pendulum):
    # whole trajectories, every trajectory: the batch is the training set at every step
    cfg = _config(4, lambda0=0.5, tau=7.0, lambda_every=2, window=0, batch_size=0)
    exp, _ = A.make_experiment(pendulum, cfg)
    state = exp.init(jax.random.PRNGKey(0))
    s1, m1 = exp.step(state, None, jax.random.PRNGKey(1))
    assert int(s1.step) == 1 and float(s1.lam) == 0.5  # no update inside the N = 2 inner steps
    s2, m2 = exp.step(s1, None, jax.random.PRNGKey(2))
    # λ ← λ + τ L_traj, L_traj of the second step's batch at the parameters before its update
    l_traj = _numpy_hybrid_traj_mse(s1.params, pendulum.train, pendulum.ts, pendulum.dt)
    np.testing.assert_allclose(float(s2.lam), 0.5 + 7.0 * l_traj, rtol=1e-5)
    assert float(m2["lambda"]) == float(s2.lam)
    np.testing.assert_allclose(float(m2["l_traj"]), l_traj, rtol=1e-5)
    assert not np.allclose(s2.params["physics"]["omega"], s1.params["physics"]["omega"])


def test_interrupted_run_resumes_exactly(pendulum, tmp_path):
    """A run that lost its step-4 checkpoint (stopped after step 2) resumes to the same θ,
    optimizer state and λ as the uninterrupted 4-step run, and rewrites the same metrics."""
    cfg = _config(4, lambda0=0.5, tau=3.0, lambda_every=1, window=5, batch_size=2)
    cfg.log_every, cfg.checkpoint_every = 1, 2
    exp, _ = A.make_experiment(pendulum, cfg)
    mesh = sharding.data_mesh(jax.devices()[:1])
    full = run(exp, cfg, tmp_path, mesh=mesh)
    full_rows = _rows(tmp_path / "metrics.csv")
    shutil.rmtree(tmp_path / "checkpoints" / "4")
    resumed = run(exp, cfg, tmp_path, mesh=mesh)
    assert int(resumed.step) == 4 and float(resumed.lam) > 0.5
    for a, b in zip(jax.tree_util.tree_leaves(full), jax.tree_util.tree_leaves(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    rows = _rows(tmp_path / "metrics.csv")
    assert [r["step"] for r in rows] == ["1", "2", "3", "4"]
    for a, b in zip(full_rows, rows):
        a.pop("steps_per_sec"), b.pop("steps_per_sec")
        assert a == b


def test_exploding_run_stops_with_one_line_error(pendulum, tmp_path):
    # Adam's first step moves every weight of F_a by ±1e30; the second one overflows
    cfg = _config(3, lr=1e30, physics_lr_scale=1e-30, window=5, batch_size=2)
    cfg.log_every = cfg.checkpoint_every = 1
    with pytest.raises(NonFiniteError) as e:
        A.fit(cfg, tmp_path, problem=pendulum)
    msg = str(e.value)
    assert "\n" not in msg
    assert re.fullmatch(
        r"non-finite .+ at step 2; stopped, last good checkpoint: step 1 in .*checkpoints", msg
    ), msg
    assert Checkpointer(tmp_path / "checkpoints").all_steps() == [1]


def test_physics_only_recovers_omega_on_frictionless_data(tmp_path):
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
    cfg = _config(150, method="physics", lr=3e-3, physics_lr_scale=10.0)
    model, state = A.fit(cfg, tmp_path, problem=problem)
    res = A.evaluate_model(model, state.params)
    assert res["param_error_pct"] < 0.5, res
    assert res["forecast_mse"] < 1e-4, res


def test_cli_writes_table(tmp_path):
    rc = main(
        [
            "aphynity",
            "--config",
            "aphynity_tiny",
            "--workdir",
            str(tmp_path),
            "aphynity.methods=data,aphynity",
            "log_every=1",
            "checkpoint_every=3",
            "progress=False",
        ]
    )
    assert rc == 0
    rows = _rows(tmp_path / "aphynity.csv")
    assert [(r["dataset"], r["method"]) for r in rows] == [("pendulum", m) for m in A.METHODS[1::2]]
    md = (tmp_path / "aphynity.md").read_text()
    for m in ("data", "aphynity"):
        assert f"| pendulum | {m} |" in md
    # per step, λ_j = λ_{j-1} + τ L_traj_j for APHYNITY (τ = 10, λ0 = 1, every step); fixed
    # for the neural ODE
    steps = _rows(tmp_path / "pendulum" / "aphynity" / "metrics.csv")
    lam = np.array([1.0] + [float(r["lambda"]) for r in steps])
    np.testing.assert_allclose(np.diff(lam), [10 * float(r["l_traj"]) for r in steps], rtol=1e-5)
    assert float(rows[1]["final_lambda"]) == pytest.approx(lam[-1])
    assert float(rows[0]["final_lambda"]) == 1.0
    assert [r["lambda"] for r in _rows(tmp_path / "pendulum" / "data" / "metrics.csv")] == [
        "1.0"
    ] * 3


def test_bad_names_and_settings(pendulum):
    with pytest.raises(ValueError, match="unknown APHYNITY data set 'foo'"):
        A.make_problem("foo")
    with pytest.raises(ValueError, match="unknown APHYNITY method 'bar'.*aphynity"):
        A._method(None, "bar")
    with pytest.raises(ValueError, match="lambda_every must be >= 1, got 0"):
        A.make_experiment(pendulum, _config(2, lambda_every=0))
    with pytest.raises(ValueError, match="window must be 0 .* or >= 2"):
        A.make_experiment(pendulum, _config(2, window=1))
