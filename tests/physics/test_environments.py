"""Learning across environments: the Lotka–Volterra invariant, Gray–Scott against an
independent SciPy integration and its mass balance, LEADS with g_e = 0 against One-For-All,
CoDA at ξ = 0 against the shared network, context-only adaptation, the command and its
one-line errors."""

import csv

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from derivative_checks import jvp_matches_central_differences
from scipy.integrate import solve_ivp

from physics import environments as E
from physics import simulators as sim
from physics.configs import environments_tiny
from physics.main import main


def test_lotka_volterra_keeps_its_invariant():
    with jax.enable_x64(True):
        args = (0.75, 0.5, 0.25, 0.5)  # (α, β, γ, δ)
        y0 = jnp.array([[1.0, 2.0], [1.7, 1.2], [0.4, 0.9]])
        ts = jnp.linspace(0.0, 10.0, 11)
        ys = sim.simulate_lotka_volterra(y0, ts, alpha=0.75, beta=0.5, gamma=0.25, delta=0.5)
        h = np.asarray(sim.lotka_volterra_invariant(ys, args))  # [T, 3]
    assert ys.dtype == jnp.float64 and h.shape == (11, 3)
    assert np.ptp(np.asarray(ys)[:, :, 0], axis=0).min() > 0.5  # the states do move
    np.testing.assert_allclose(h, np.broadcast_to(h[:1], h.shape), rtol=1e-10, atol=0)


def _numpy_gray_scott(t, flat, d_u, d_v, feed, kill, size):
    """Independent right-hand side: the 9-point stencil as an explicit sum over offsets."""
    u, v = flat.reshape(2, size, size)
    weights = {(0, 0): -3.0}
    weights.update({o: 0.5 for o in ((0, 1), (0, -1), (1, 0), (-1, 0))})
    weights.update({o: 0.25 for o in ((1, 1), (1, -1), (-1, 1), (-1, -1))})

    def lap(a):
        out = np.zeros_like(a)
        for i in range(size):
            for j in range(size):
                out[i, j] = sum(
                    w * a[(i + di) % size, (j + dj) % size] for (di, dj), w in weights.items()
                )
        return out

    du = d_u * lap(u) - u * v * v + feed * (1 - u)
    dv = d_v * lap(v) + u * v * v - (feed + kill) * v
    return np.concatenate([du.ravel(), dv.ravel()])


def test_gray_scott_matches_scipy_and_balances_mass():
    size = 6
    y0 = sim.gray_scott_blocks(np.random.default_rng(0), 1, size, n_block=2)[0]
    y0 = y0 + np.random.default_rng(1).uniform(0, 0.1, y0.shape).astype(np.float32)
    ts = np.array([0.0, 5.0, 10.0])
    params = (0.2097, 0.105, 0.037, 0.06)
    ref = solve_ivp(
        _numpy_gray_scott,
        (0, 10),
        y0.astype(np.float64).ravel(),
        t_eval=ts,
        args=params + (size,),
        method="DOP853",
        rtol=1e-11,
        atol=1e-12,
    ).y.T.reshape(3, 2, size, size)
    with jax.enable_x64(True):
        # F = k = 0: the reaction moves u to v and diffusion moves it in space: Σ(u + v) stays
        starts = jnp.asarray(np.stack([y0, ref[-1]]), jnp.float64)
        runs = jax.jit(
            jax.vmap(lambda y, f, k: sim.simulate_gray_scott(y, ts, feed=f, kill=k, dt=0.05))
        )(starts, jnp.array([0.037, 0.0]), jnp.array([0.06, 0.0]))
        ys, closed = runs[0], runs[1]
    np.testing.assert_allclose(np.asarray(ys), ref, atol=2e-8)
    mass = np.asarray(closed).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(mass, mass[0], rtol=1e-13)
    assert np.abs(np.asarray(closed[-1]) - ref[-1]).max() > 1e-2  # the fields do change


def test_nine_point_laplacian_spectrum_and_rk4_step_limit():
    """Plane waves are eigenvectors with symbol −3 + cos a + cos b + cos a cos b (closed form):
    −4 on the grid-scale modes. There D_u Δ times the observation step Δt = 40 leaves RK4's
    stability region, and Δt = 2 (20 steps per observation) is inside it."""
    n = 16
    k = 2 * np.pi * np.arange(n) / n
    a, b = np.meshgrid(k, k, indexing="ij")
    with jax.enable_x64(True):
        rows, cols = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        for i, j in [(0, 1), (3, 5), (8, 8), (8, 0), (5, 12)]:
            wave = np.cos(k[i] * rows + k[j] * cols)
            out = np.asarray(sim.periodic_laplacian_9(jnp.asarray(wave), 0.5))
            symbol = (-3 + np.cos(k[i]) + np.cos(k[j]) + np.cos(k[i]) * np.cos(k[j])) / 0.25
            np.testing.assert_allclose(out, symbol * wave, atol=1e-12)
    symbols = -3 + np.cos(a) + np.cos(b) + np.cos(a) * np.cos(b)
    assert symbols.min() == pytest.approx(-4.0)

    def rk4_gain(z):
        return abs(1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24)

    z = 0.2097 * -4.0
    assert rk4_gain(40 * z) > 1e4 and rk4_gain(2 * z) < 1 and rk4_gain(40 / 13 * z) < 1
    assert rk4_gain(40 / 12 * z) > 1  # 13 steps per observation are the fewest stable ones


@pytest.fixture(scope="module")
def lv():
    return E.lotka_volterra_problem(
        [(0.5, 0.5, 0.5, 0.5), (1.0, 0.5, 0.25, 0.5), (0.25, 0.5, 1.0, 0.5)],
        num_train=2,
        num_test=2,
        seed=0,
    )


def test_leads_with_zero_residuals_is_one_for_all(lv):
    net = E.make_network("lv", hidden=8)
    leads = E.MultiEnvModel("leads", net, lv.num_envs, lv.state_shape)
    ofa = E.MultiEnvModel("one_for_all", net, lv.num_envs, lv.state_shape)
    p_leads = leads.init(jax.random.PRNGKey(0))
    p_leads["env"] = jax.tree_util.tree_map(jnp.zeros_like, p_leads["env"])
    p_ofa = {"common": p_leads["common"], "env": {}}
    z = jax.random.normal(jax.random.PRNGKey(1), (leads.num_vector_normals(p_leads["env"]),))
    vectors = leads.vectors_from_normal(z, p_leads["env"])
    hp = {
        "steps_per_obs": 2,
        "lambda_inv": 0.3,
        "factor_lip": 0.1,
        "power_iterations": 3,
        "lambda_w": 0.0,
        "lambda_context": 0.0,
    }
    obs, ts, key = jnp.asarray(lv.train), jnp.asarray(lv.ts), jax.random.PRNGKey(2)

    @jax.jit
    def both(p_leads, p_ofa):
        out = []
        for model, p, v in ((leads, p_leads, vectors), (ofa, p_ofa, None)):
            loss, (metrics, _) = E.objective(model, p, v, obs, ts, key, 0.5, hp)
            out.append((loss, metrics["l_traj"], E.predict(model, p, obs[:, :, 0], ts, 2)))
        return out

    (loss_a, traj_a, pred_a), (loss_b, traj_b, pred_b) = both(p_leads, p_ofa)
    assert float(loss_a) == float(loss_b) == float(traj_a) == float(traj_b) > 0
    np.testing.assert_array_equal(np.asarray(pred_a), np.asarray(pred_b))
    assert pred_a.shape == lv.train.shape


def test_gray_scott_training_rollout_is_classical_rk4():
    """The training objective's Gray–Scott trajectories (intervals written out, teacher
    forcing off) against the classical RK4 formula applied interval by interval."""
    problem = E.gray_scott_problem(num_train=1, num_test=1, size=8, horizon=160.0)
    model = E.MultiEnvModel("leads", E.make_network("gs", 4, scale=0.3), 3, problem.state_shape)
    params = model.init(jax.random.PRNGKey(0))
    obs, ts = jnp.asarray(problem.train), jnp.asarray(problem.ts)  # [3, 1, 4, 2, 8, 8]
    hp = {"steps_per_obs": 1, "lambda_inv": 0.0, "lambda_w": 0.0, "lambda_context": 0.0}
    _, (metrics, _) = E.objective(model, params, None, obs, ts, jax.random.PRNGKey(1), 0.0, hp)

    field = jax.jit(model.field)
    pred = np.zeros(obs.shape, np.float64)
    for e in range(3):
        env = jax.tree_util.tree_map(lambda a, e=e: a[e], params["env"])
        y = obs[e, :, 0]
        pred[e, :, 0] = y
        for k in range(len(ts) - 1):
            h = ts[k + 1] - ts[k]
            k1 = field(params["common"], env, y)
            k2 = field(params["common"], env, y + h / 2 * k1)
            k3 = field(params["common"], env, y + h / 2 * k2)
            k4 = field(params["common"], env, y + h * k3)
            y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            pred[e, :, k + 1] = y
    assert np.max(np.abs(pred[:, :, -1] - obs[:, :, 0])) > 0.01  # the field moves the state
    ours = jax.vmap(
        lambda env, o: E._rollout_one(
            model, params["common"], env, o, ts, 1, jnp.zeros(len(ts) - 1, bool), unroll=True
        )
    )(params["env"], obs)
    np.testing.assert_allclose(np.asarray(ours), pred, rtol=0, atol=1e-6)
    l_traj = np.mean((pred - np.asarray(obs, np.float64)) ** 2)
    np.testing.assert_allclose(float(metrics["l_traj"]), l_traj, rtol=1e-4)


@pytest.mark.parametrize("system", ["lv", "gs"])
def test_forward_mode_through_the_leads_objective(system, lv):
    """jax.jvp runs through the LEADS training objective (RK4 rollouts, the penalty) and
    agrees with central finite differences in float64; Gray–Scott takes the written-out
    rollout (second derivatives of the same steps: `tests/physics/test_aphynity.py`). c_lip = 0: σ(W) is differentiated with its power-iteration vectors
    held fixed (as in the reference), which finite differences do not do."""
    from jax.flatten_util import ravel_pytree

    with jax.enable_x64(True):
        if system == "lv":
            problem, hidden = lv, 8
        else:
            problem = E.gray_scott_problem(num_train=1, num_test=1, size=8, horizon=120.0)
            hidden = 4
        net = E.make_network(system, hidden, **({"scale": 0.3} if system == "gs" else {}))
        model = E.MultiEnvModel("leads", net, problem.num_envs, problem.state_shape)
        params = jax.tree_util.tree_map(
            lambda a: a.astype(jnp.float64), model.init(jax.random.PRNGKey(0))
        )
        z = jax.random.normal(jax.random.PRNGKey(1), (model.num_vector_normals(params["env"]),))
        vectors = model.vectors_from_normal(z.astype(jnp.float64), params["env"])
        hp = {"steps_per_obs": 1, "lambda_inv": 0.3, "factor_lip": 0.0, "power_iterations": 2}
        obs, ts = jnp.asarray(problem.train, jnp.float64), jnp.asarray(problem.ts, jnp.float64)
        flat, unravel = ravel_pytree(params)

        @jax.jit
        def f(p):
            loss, _ = E.objective(
                model, unravel(p), vectors, obs, ts, jax.random.PRNGKey(2), 0.0, hp
            )
            return loss

        rng = np.random.default_rng(3)
        directions = [jnp.asarray(rng.normal(size=flat.shape)) * 0.05 for _ in range(2)]
        jvp_matches_central_differences(f, flat, directions)


def test_grid_rollout_is_written_out_on_cpu_only():
    """`unroll` writes the intervals out in the CPU program; a GPU program keeps the loop,
    the same program as without `unroll`."""
    problem = E.gray_scott_problem(num_train=1, num_test=1, size=8, horizon=160.0)
    model = E.MultiEnvModel("leads", E.make_network("gs", 4), 3, problem.state_shape)
    params = model.init(jax.random.PRNGKey(0))
    obs, ts = jnp.asarray(problem.train)[0], jnp.asarray(problem.ts)
    env = jax.tree_util.tree_map(lambda a: a[0], params["env"])

    def lowered(unroll, platform):
        fn = jax.jit(lambda o: E._rollout_one(model, params["common"], env, o, ts, 1, None, unroll))
        text = fn.trace(obs).lower(lowering_platforms=(platform,)).as_text()
        return text.count("stablehlo.while")

    assert lowered(True, "cuda") == lowered(False, "cuda") == lowered(False, "cpu")
    assert lowered(True, "cpu") > lowered(False, "cpu")


def _coda_config(steps):
    c = E._run_config(
        environments_tiny.get_config(),
        environments_tiny.get_config().environments.lv,
        steps,
        1e-2,
        1.0,
        "coda",
    )
    return c


def test_coda_context_zero_is_the_shared_network_and_adaptation_moves_only_contexts(lv):
    net = E.make_network("lv", hidden=8)
    coda = E.MultiEnvModel("coda", net, lv.num_envs, lv.state_shape, init_gain=0.3)
    ofa = E.MultiEnvModel("one_for_all", net, lv.num_envs, lv.state_shape)
    params = coda.init(jax.random.PRNGKey(0))
    assert float(jnp.abs(params["common"]["W"]).min()) > 0
    assert params["env"]["context"].shape == (3, 2) and not params["env"]["context"].any()
    shared = {"common": coda._layout[0](params["common"]["theta"]), "env": {}}
    x0, ts = jnp.asarray(lv.test[:, :, 0]), jnp.asarray(lv.ts)
    pred_coda, pred_shared = jax.jit(
        lambda p, q: (E.predict(coda, p, x0, ts), E.predict(ofa, q, x0, ts))
    )(params, shared)
    np.testing.assert_array_equal(np.asarray(pred_coda), np.asarray(pred_shared))
    # adaptation: two Adam steps on the contexts of new environments only
    exp, full = E.make_experiment(coda, lv, _coda_config(2), frozen_common=params["common"])
    state = exp.init(jax.random.PRNGKey(3))
    assert set(state.params) == {"env"} and not state.params["env"]["context"].any()
    for i in range(2):
        state, metrics = exp.step(state, None, jax.random.PRNGKey(i))
    adapted, new_model = full(state.params), coda
    for a, b in zip(
        jax.tree_util.tree_leaves(params["common"]), jax.tree_util.tree_leaves(adapted["common"])
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    ctx = np.asarray(adapted["env"]["context"])
    assert np.all(np.abs(ctx) > 1e-4), ctx  # lr 1e-2: each context moved
    assert set(adapted) == {"common", "env"} and set(adapted["env"]) == {"context"}
    # the adapted field is the network at θ + W ξ_e
    theta_e = params["common"]["theta"] + params["common"]["W"] @ adapted["env"]["context"][1]
    x = jnp.asarray(lv.train[1, :, 3])
    np.testing.assert_allclose(
        np.asarray(
            new_model.field(adapted["common"], {"context": adapted["env"]["context"][1]}, x)
        ),
        np.asarray(net.apply(coda._layout[0](theta_e), x)),
        rtol=1e-6,
    )


def test_cli_writes_table_and_figures(tmp_path):
    rc = main(
        [
            "environments",
            "--config",
            "environments_tiny",
            "--workdir",
            str(tmp_path),
            "environments.methods=leads",
            "environments.coda_methods=",
        ]
    )
    assert rc == 0
    with open(tmp_path / "environments.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["system"], r["method"]) for r in rows] == [("lv", "leads")]
    assert float(rows[0]["published_mse"]) == 1.16e-3
    assert len([k for k in rows[0] if k.startswith("mse_env")]) == 10
    md = (tmp_path / "environments.md").read_text()
    assert "| leads | " in md and "1.16 ± 0.99e-3" in md and "CoDA" not in md
    assert (tmp_path / "lv_trajectories.png").stat().st_size > 1000
    with open(tmp_path / "lv" / "leads" / "metrics.csv", newline="") as f:
        steps = list(csv.DictReader(f))
    assert [r["step"] for r in steps] == ["0", "2"] and float(steps[-1]["g_lip"]) > 0
    # a finished run is extended by asking for more steps (and may log more often)
    more = ["environments.lv.steps=3", "log_every=1", "checkpoint_every=1"]
    args = ["environments", "--config", "environments_tiny", "--workdir", str(tmp_path),
            "environments.methods=leads", "environments.coda_methods=", *more]  # fmt: skip
    assert main(args) == 0
    with open(tmp_path / "lv" / "leads" / "metrics.csv", newline="") as f:
        assert [r["step"] for r in csv.DictReader(f)] == ["0", "2", "3"]


@pytest.mark.parametrize(
    "override,message",
    [
        ("environments.systems=lv,ns", "config key 'environments.systems' must be"),
        ("environments.methods=coda", "config key 'environments.methods' must be"),
        ("environments.lv.tf_decay=1.0", "config key 'environments.lv.tf_decay' must be"),
        ("environments.coda_methods=leads,bar", "config key 'environments.coda_methods'"),
    ],
)
def test_bad_settings_give_one_line_errors(override, message, tmp_path, capsys):
    rc = main(["environments", "--config", "environments_tiny", "-w", str(tmp_path), override])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.count("\n") == 1, err


def test_bad_names_raise_value_errors(lv):
    import physics.configs as p

    assert p.ENV_SYSTEMS == E.SYSTEMS and p.ENV_METHODS == E.METHODS[:-1]
    with pytest.raises(ValueError, match="unknown system 'ns'; valid choices: \\['lv', 'gs'\\]"):
        E.make_problem("ns")
    with pytest.raises(ValueError, match="unknown method 'maml'; valid choices"):
        E.MultiEnvModel("maml", E.make_network("lv", 4), 2, (2,))
    ofa = E.MultiEnvModel("one_for_all", E.make_network("lv", 4), 2, (2,))
    with pytest.raises(ValueError, match="one_for_all has no per-environment parameters"):
        E.make_experiment(ofa, lv, _coda_config(1), frozen_common={})


def test_coda_table_rows():
    row = dict(method="coda", in_mse=1.5e-4, in_mse_std=2e-5, in_mape_pct=0.8, adapt_mse=3e-4)
    row.update(adapt_mse_std=1e-4, adapt_mape_pct=1.2, adaptation="contexts ξ")
    lines = E._markdown([], [], [], [row])
    assert lines[-1] == "| coda | 1.5 ± 0.2e-4 | 0.8 | 3 ± 1e-4 | 1.2 | contexts ξ |"
