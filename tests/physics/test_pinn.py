"""PINN: the residual operator on the exact solution, loss terms by hand, both derivative modes
against finite differences, a tiny command run, one-line errors."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physics import burgers, pinn
from physics import configs as physics_configs
from physics.main import main


def test_choice_lists_match_the_config_checks():
    assert physics_configs.PINN_DERIVATIVES == pinn.DERIVATIVES
    assert physics_configs.PINN_DTYPES == pinn.DTYPES


def test_residual_of_the_exact_solution_vanishes():
    nu = burgers.RAISSI_NU
    with jax.enable_x64(True):
        pts = pinn.latin_hypercube(
            jax.random.PRNGKey(0), 16, jnp.array([0.05, -1.0]), jnp.array([0.99, 1.0])
        )
        t, x = pts[:, 0], pts[:, 1]

        def exact(t, x):
            return burgers.cole_hopf(x, t, nu, burgers.sine_potential)

        derivs = jax.jit(pinn.derivatives_forward, static_argnums=0)(exact, t, x)
        u, u_t, u_x, u_xx = map(np.asarray, derivs)
        r = u_t + u * u_x - nu * u_xx
        scale = np.abs(u_t) + np.abs(u * u_x) + np.abs(nu * u_xx)
    assert np.all(np.abs(r) <= 1e-10 * np.maximum(scale, 1.0)), np.abs(r).max()
    # and not trivially: the terms themselves are O(1) and larger
    assert scale.max() > 1.0
    # a wrong viscosity leaves a residual
    assert np.abs(u_t + u * u_x - 2 * nu * u_xx).max() > 1e-3


def _tiny(dtype=jnp.float64):
    model = pinn.make_net(width=2, depth=1)
    params = pinn.init_params(model, jax.random.PRNGKey(3), dtype)
    params = jax.tree_util.tree_map(
        lambda a: a + 0.3 * jax.random.normal(jax.random.PRNGKey(4), a.shape, dtype), params
    )
    return model, params


def test_loss_terms_by_hand():
    t_max, nu = 0.99, 0.07
    with jax.enable_x64(True):
        model, params = _tiny()
        rng = np.random.default_rng(0)
        t_b, x_b, u_b = rng.uniform(0, t_max, 5), rng.uniform(-1, 1, 5), rng.normal(size=5)
        t_f, x_f = rng.uniform(0, t_max, 7), rng.uniform(-1, 1, 7)
        problem = pinn.Problem(
            *map(jnp.asarray, (t_b, x_b, u_b, t_f, x_f)),
            np.zeros(1),
            np.zeros(1),
            np.zeros((1, 1)),
            nu,
            t_max,
        )
        u_fn = pinn.network_fn(model, params, t_max)
        got = {m: jax.jit(lambda m=m: pinn.pinn_loss(u_fn, problem, m))() for m in pinn.DERIVATIVES}
    p = jax.tree_util.tree_map(np.asarray, params)["params"]
    w1, b1 = p["Dense_0"]["kernel"], p["Dense_0"]["bias"]  # [2, 2], [2]
    w2, b2 = p["Dense_1"]["kernel"][:, 0], p["Dense_1"]["bias"][0]  # [2], []

    def hand(t, x):
        s = 2 * t / t_max - 1  # scaled time
        z = np.outer(s, w1[0]) + np.outer(x, w1[1]) + b1  # [N, 2]
        a = np.tanh(z)
        d1, d2 = 1 - a**2, -2 * a * (1 - a**2)  # tanh', tanh''
        u = a @ w2 + b2
        u_t = (d1 * w1[0] * 2 / t_max) @ w2
        u_x = (d1 * w1[1]) @ w2
        u_xx = (d2 * w1[1] ** 2) @ w2
        return u, u_t, u_x, u_xx

    loss_u = np.mean((hand(t_b, x_b)[0] - u_b) ** 2)
    u, u_t, u_x, u_xx = hand(t_f, x_f)
    loss_f = np.mean((u_t + u * u_x - nu * u_xx) ** 2)
    for mode, (loss, aux) in got.items():
        np.testing.assert_allclose(float(aux["loss_u"]), loss_u, rtol=1e-12, err_msg=mode)
        np.testing.assert_allclose(float(aux["loss_f"]), loss_f, rtol=1e-12, err_msg=mode)
        np.testing.assert_allclose(float(loss), loss_u + loss_f, rtol=1e-12, err_msg=mode)


def test_forward_and_taylor_modes_agree_with_finite_differences():
    with jax.enable_x64(True):
        model = pinn.make_net(width=4, depth=2)
        params = pinn.init_params(model, jax.random.PRNGKey(1), jnp.float64)
        u_fn = pinn.network_fn(model, params, 0.99)
        t = jnp.array([0.1, 0.4, 0.9])
        x = jnp.array([-0.7, 0.2, 0.95])
        fwd = jax.jit(pinn.derivatives_forward, static_argnums=0)(u_fn, t, x)
        tay = jax.jit(pinn.derivatives_taylor, static_argnums=0)(u_fn, t, x)
        h = 1e-4
        fd_t = (u_fn(t + h, x) - u_fn(t - h, x)) / (2 * h)
        fd_x = (u_fn(t, x + h) - u_fn(t, x - h)) / (2 * h)
        fd_xx = (u_fn(t, x + h) - 2 * u_fn(t, x) + u_fn(t, x - h)) / h**2
    for a, b in zip(fwd, tay):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fwd[1], fd_t, atol=1e-7)
    np.testing.assert_allclose(fwd[2], fd_x, atol=1e-7)
    np.testing.assert_allclose(fwd[3], fd_xx, atol=1e-5)
    assert np.abs(np.asarray(fwd[3])).max() > 1e-3  # a curved function


def test_problem_points():
    prob = pinn.make_problem(jax.random.PRNGKey(0), num_boundary=40, num_collocation=50)
    t_b, x_b, u_b = map(np.asarray, (prob.t_b, prob.x_b, prob.u_b))
    on_boundary = np.abs(np.abs(x_b) - 1) < 1e-7
    assert np.all(on_boundary | (t_b == 0))
    np.testing.assert_allclose(u_b[on_boundary], 0.0, atol=1e-7)
    np.testing.assert_allclose(u_b[~on_boundary], -np.sin(np.pi * x_b[~on_boundary]), atol=1e-6)
    assert len(set(zip(t_b.tolist(), x_b.tolist()))) == 40  # without replacement
    t_f, x_f = np.asarray(prob.t_f[:50]), np.asarray(prob.x_f[:50])
    # Latin hypercube: one point in each of the 50 slices of each axis
    assert sorted(np.floor(t_f / 0.99 * 50).astype(int)) == list(range(50))
    assert sorted(np.floor((x_f + 1) / 2 * 50).astype(int)) == list(range(50))
    assert prob.t_f.shape == (90,) and prob.grid_u.shape == (100, 256)


def test_tiny_command_runs_and_resumes(tmp_path, capsys):
    args = ["pinn", "--config", "pinn_tiny", "--workdir", str(tmp_path)]
    assert main(args) in (0, None)
    out = json.loads((tmp_path / "pinn.json").read_text())
    assert np.isfinite(out["rel_l2"]) and out["adam_steps"] == 4 and out["lbfgs_steps"] == 4
    for name in ("pinn.md", "pinn_error.png", "pinn_snapshots.png", "adam/metrics.csv"):
        assert (tmp_path / name).exists(), name
    rows = (tmp_path / "lbfgs" / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step") and rows[-1].startswith("4,")
    # more L-BFGS steps resume from the finished phases
    assert main(args + ["pinn.lbfgs_steps=6"]) in (0, None)
    rows = (tmp_path / "lbfgs" / "metrics.csv").read_text().splitlines()
    assert rows[-1].startswith("6,") and sum(r.startswith("4,") for r in rows) == 1
    assert "resumed" in capsys.readouterr().out


def test_bad_inputs(tmp_path, capsys):
    with pytest.raises(ValueError, match="num_boundary"):
        pinn.make_problem(jax.random.PRNGKey(0), num_boundary=1000)
    with pytest.raises(ValueError, match="valid choices: forward, taylor"):
        pinn.derivatives(lambda t, x: t * x, jnp.ones(2), jnp.ones(2), "reverse")
    with pytest.raises(ValueError, match="width and depth"):
        pinn.make_net(width=0)
    for override, key in [
        ("pinn.derivatives=reverse", "pinn.derivatives"),
        ("pinn.dtype=float16", "pinn.dtype"),
        ("pinn.num_boundary=500", "pinn.num_boundary"),
    ]:
        code = main(["pinn", "--config", "pinn_tiny", "--workdir", str(tmp_path), override])
        err = capsys.readouterr().err.strip()
        assert code == 2 and key in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "pinn.json").exists()
