"""Normalizing flows against exact answers: inverses, log-determinants against the autodiff
Jacobian, normalised densities, the Banach bound of the fixed-point inverse, the unbiased
power-series log-det, a CNF against its Euler discretisation, and one short training run.

Parameters are drawn with numpy in the shapes the modules make (nothing to compile), and
every check of a flow is one compiled function."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from generative import flows
from generative.continuous import solve_with_logdet
from generative.core import config as config_lib


def _random_variables(init, seed, scale):
    """float64 variables of the shapes `init` makes, drawn with numpy: kernels [in, out]
    N(0, scale²/in), other parameters N(0, (scale/2)²), power-iteration vectors of unit norm."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(init, jax.random.PRNGKey(0))

    def draw(path, a):
        x = rng.standard_normal(a.shape)
        if path[0].key == "spectral":
            return jnp.asarray(x / np.linalg.norm(x))
        return jnp.asarray(x * scale / (np.sqrt(a.shape[0]) if len(a.shape) == 2 else 2.0))

    return jax.tree_util.tree_map_with_path(draw, shapes)


def _converged_spectral(module, variables):
    """Variables of a residual flow with its power iterations run to convergence."""
    many = module.clone(power_iterations=200)
    update = jax.jit(lambda v: many.apply(v, True, method="block_weights", mutable=["spectral"]))
    return {**variables, **update(variables)[1]}


def _discrete_flows(dim, clamp=2.0):
    h = (8, 8)
    return {
        "nice": flows.CouplingFlow(dim, 3, h, coupling="additive", scaling=True),
        "realnvp": flows.CouplingFlow(dim, 3, h, log_scale="tanh"),
        "realnvp_softclamp": flows.CouplingFlow(dim, 3, h, log_scale="softclamp", clamp=clamp),
        "maf": flows.MAF(dim, 3, h, activation="tanh", clamp=clamp),
        "resflow": flows.ResidualFlow(
            dim, 2, (8,), lipschitz=0.9, logdet="exact", inverse_tol=1e-13, inverse_max_iter=1000
        ),  # fmt: skip
    }


def _setup(name, module, seed=0, scale=1.0):
    flow = flows.module_flow(name, module)
    v = _random_variables(flow.init, seed, scale)
    if isinstance(module, flows.ResidualFlow):
        v = _converged_spectral(module, v)
    return flow, v


def _cnf(tol=1e-9):
    field = flows.VectorField(2, (8, 8), "tanh")
    return flows.cnf_flow(field, trace="exact", rtol=tol, atol=tol, adjoint="forward")


def _round_trip_and_jacobian(flow, v, x):
    """(z, logdet, log|det| and sign of the autodiff Jacobian ∂z/∂x, log_prob or None for the
    CNF, inverse(z)), one compiled function."""

    def one(xi):  # z (differentiated) and (z, logdet) at one point
        z, logdet = flow.forward(v, xi[None])
        return z[0], (z[0], logdet[0])

    @jax.jit
    def check(v, x):
        jac, (z, logdet) = jax.vmap(jax.jacfwd(one, has_aux=True))(x)
        sign, ref = jnp.linalg.slogdet(jac)
        logp = None if flow.kind == "cnf" else flow.log_prob(v, x)
        return z, logdet, ref, sign, logp, flow.inverse(v, z)

    return check(v, x)


def test_inverse_round_trip_and_logdet_equal_the_autodiff_jacobian():
    with jax.enable_x64(True):
        cases = [_setup(n, m) for n, m in _discrete_flows(3).items()]
        cnf = _cnf()
        cases.append((cnf, _random_variables(cnf.init, 0, 1.0)))
        rng = np.random.default_rng(5)
        for flow, v in cases:
            x = jnp.asarray(1.5 * rng.standard_normal((6, flow.dim)))
            z, logdet, ref, sign, logp, back = _round_trip_and_jacobian(flow, v, x)
            cnf = flow.kind == "cnf"
            np.testing.assert_allclose(back, x, atol=1e-6 if cnf else 1e-9, err_msg=flow.kind)
            np.testing.assert_allclose(logdet, ref, atol=1e-7 if cnf else 1e-10, err_msg=flow.kind)
            assert np.all(np.asarray(sign) > 0), flow.kind  # orientation-preserving maps
            if logp is not None:
                normal = -0.5 * np.sum(np.log(2 * np.pi) + np.asarray(z) ** 2, axis=1)
                np.testing.assert_allclose(logp, normal + np.asarray(logdet), rtol=1e-12)
            assert np.abs(np.asarray(logdet)).max() > 0.05, flow.kind  # not the identity


def test_density_integrates_to_one_on_a_grid():
    with jax.enable_x64(True):
        h, half = 0.1, 8.0  # midpoint rule on [-8, 8]²
        c = np.arange(-half + h / 2, half, h)
        gx, gy = np.meshgrid(c, c)
        grid = jnp.asarray(np.stack([gx.ravel(), gy.ravel()], 1))
        cases = [_setup(n, m, 3, 0.5) for n, m in _discrete_flows(2, clamp=0.5).items()]
        cnf = _cnf(tol=1e-7)
        cases.append((cnf, _random_variables(cnf.init, 3, 1.0)))
        for flow, v in cases:
            p = np.exp(np.asarray(jax.jit(flow.log_prob)(v, grid))).reshape(len(c), len(c))
            mass = p.sum() * h * h
            assert abs(mass - 1.0) < 1e-3, (flow.kind, mass)
            base = np.exp(-0.5 * (gx**2 + gy**2)) / (2 * np.pi)
            assert np.abs(p - base).max() > 0.02, flow.kind  # not the base density


def test_made_outputs_depend_on_the_preceding_coordinates_only():
    order = (3, 1, 4, 2)  # coordinate i is the order[i]-th
    made = flows.MADE(order, hidden=(7, 5), outputs=2, activation="tanh")
    x = jax.random.normal(jax.random.PRNGKey(0), (1, 4))
    p = _random_variables(lambda key: made.init(key, x), 1, 1.0)["params"]
    jac = jax.jacrev(lambda x: jnp.stack(made.apply({"params": p}, x[None]))[:, 0])(x[0])
    nonzero = np.abs(np.asarray(jac)) > 0  # [outputs, d_out, d_in]
    allowed = np.asarray(order)[:, None] > np.asarray(order)[None, :]
    assert (nonzero == allowed[None]).all(), nonzero  # exactly the earlier coordinates


def test_fixed_point_inverse_meets_the_banach_bound():
    with jax.enable_x64(True):
        module = flows.ResidualFlow(2, 1, (16, 16), lipschitz=0.8)
        flow, v = _setup("resflow", module, seed=7, scale=1.0)
        weights = module.apply(v, method="block_weights")[0]
        norms = [np.linalg.svd(np.asarray(w), compute_uv=False)[0] for w, _ in weights]
        np.testing.assert_allclose(norms, 0.8, rtol=1e-8)  # normalised to exactly c here
        lip = float(np.prod(norms))  # Lip(g) ≤ Π ‖W‖ (LipSwish is 1-Lipschitz)
        g = jax.jit(lambda x: flows._mlp_g(weights, x))
        y = 3.0 * jax.random.normal(jax.random.PRNGKey(2), (8, 2), jnp.float64)
        iterate = jax.jit(lambda k: flows.fixed_point_inverse(g, y, tol=0.0, max_iter=k))
        exact, _ = iterate(400)
        np.testing.assert_allclose(exact + g(exact), y, atol=1e-12)
        step1 = np.linalg.norm(np.asarray(y - g(y) - y), axis=1)  # ‖x₁ − x₀‖
        errors = []
        for k in (1, 2, 4, 8):
            xk, iters = iterate(k)
            assert int(iters) == k
            err = np.linalg.norm(np.asarray(xk - exact), axis=1)
            assert np.all(err <= lip**k / (1 - lip) * step1 * (1 + 1e-9)), (k, err)
            errors.append(err.max())
        assert errors[-1] < 1e-2 * errors[0]  # it converges, geometrically


def test_roulette_log_det_and_its_gradient_are_unbiased():
    with jax.enable_x64(True):
        module = flows.ResidualFlow(2, 1, (16,), lipschitz=0.9)
        _, v = _setup("resflow", module, seed=11, scale=1.0)
        ws = module.apply(v, method="block_weights")[0]
        x = 2.0 * jax.random.normal(jax.random.PRNGKey(3), (3, 2), jnp.float64)
        g = flows._mlp_g

        def exact(ws):
            return flows.residual_logdet_exact(g, ws, x)

        def draw(key):
            est = lambda ws: flows.residual_logdet_roulette(g, ws, x, key)  # noqa: E731
            return est(ws), jax.grad(lambda ws: est(ws).sum())(ws)

        n = 5000
        est, grads = jax.jit(jax.vmap(draw))(jax.random.split(jax.random.PRNGKey(4), n))
        truth = [exact(ws)] + jax.tree.leaves(jax.grad(lambda ws: exact(ws).sum())(ws))
        draws = [est] + jax.tree.leaves(grads)
        zs = []
        for t, d in zip(truth, draws):
            d = np.asarray(d).reshape(n, -1)
            se = d.std(0) / math.sqrt(n)
            keep = se > 0  # the last bias does not enter ∂g/∂x: exactly zero
            np.testing.assert_allclose(np.asarray(t).reshape(-1)[~keep], 0.0, atol=1e-12)
            zs.append((d.mean(0)[keep] - np.asarray(t).reshape(-1)[keep]) / se[keep])
        zs = np.concatenate(zs)
        assert np.abs(zs).max() < 4.5, zs  # 40 z-scores
        assert abs(zs.mean()) < 4 / math.sqrt(len(zs)), zs.mean()
        assert np.abs(np.asarray(exact(ws))).min() > 0.02  # a non-trivial log-det


def test_cnf_log_det_is_the_limit_of_euler_flows_at_first_order():
    with jax.enable_x64(True):
        field = flows.VectorField(2, (8, 8), "tanh")
        init = lambda key: field.init(key, 0.0, jnp.zeros((1, 2)))  # noqa: E731
        p = _random_variables(init, 1, 1.0)["params"]
        x = jax.random.normal(jax.random.PRNGKey(2), (5, 2), jnp.float64)

        def f(t, z, p):
            return field.apply({"params": p}, t, z)

        @jax.jit
        def continuous(p):
            r = solve_with_logdet(f, x, 0.0, 1.0, p, method="exact", rtol=1e-11, atol=1e-11)
            return r.y, r.delta

        def euler(p, steps):
            h = 1.0 / steps

            def body(carry, k):
                z, total = carry
                jac = jax.vmap(jax.jacfwd(lambda zi: f(k * h, zi[None], p)[0]))(z)
                step = jnp.linalg.slogdet(jnp.eye(2)[None] + h * jac)[1]
                return (z + h * f(k * h, z, p), total + step), None

            init = (x, jnp.zeros(x.shape[:1]))
            return jax.lax.scan(body, init, jnp.arange(steps, dtype=jnp.float64))[0]

        y, delta = continuous(p)
        errs = []
        for steps in (25, 50, 100, 200):
            ye, de = jax.jit(euler, static_argnums=1)(p, steps)
            errs.append(float(np.abs(np.asarray(de - delta)).max()))
            assert float(np.abs(np.asarray(ye - y)).max()) < 20.0 / steps
        ratios = np.array(errs[:-1]) / np.array(errs[1:])
        np.testing.assert_allclose(ratios, 2.0, rtol=0.15)  # error ∝ h
        assert errs[-1] < 0.05 * np.abs(np.asarray(delta)).max()


def test_bad_options_are_one_line_value_errors():
    def shapes(flow):  # builds the modules (their checks run) without compiling anything
        return jax.eval_shape(flows.module_flow("f", flow).init, jax.random.PRNGKey(0))

    residual = flows.module_flow("r", flows.ResidualFlow(2, 1, (4,)))
    errors = []
    for make, match in [
        (lambda: shapes(flows.CouplingFlow(1)), "d >= 2"),
        (lambda: shapes(flows.MAF(2, log_scale="exp")), "softclamp"),
        (lambda: shapes(flows.ResidualFlow(2, lipschitz=1.0)), r"\(0, 1\)"),
        (lambda: jax.eval_shape(residual.log_prob, shapes(residual.module), jnp.zeros((1, 2))),
         "needs a PRNG key"),
        (lambda: flows.cnf_flow(flows.VectorField(2), adjoint="semi"), "backsolve, direct"),
        (lambda: _tiny(["model.kind=glow"]), "nice, realnvp"),
        (lambda: _tiny(["model.kind=resflow", "eval.logdet=roulette"]), "eval.logdet"),
    ]:  # fmt: skip
        with pytest.raises(ValueError, match=match) as e:
            make()
        errors.append(str(e.value))
    assert all("\n" not in m for m in errors), errors


def _tiny(overrides=()):
    return config_lib.resolve("generative.configs", "flow_realnvp_tiny", list(overrides))


def test_tiny_training_run_writes_its_evaluation(tmp_path):
    from generative.main import main

    code = main(["train", "--config", "flow_realnvp_tiny", "--workdir", str(tmp_path),
                 "eval.sinkhorn=false"])  # fmt: skip
    assert code in (0, None)
    ev = json.loads((tmp_path / "eval.json").read_text())
    assert ev["kind"] == "realnvp" and ev["step"] == 20 and ev["num_test"] == 256
    np.testing.assert_allclose(ev["entropy_nats"], math.log(32))
    assert ev["nll_nats"] > math.log(32) - 5 * ev["nll_nats_stderr"]  # no model beats the floor
    assert ev["inverse_max_error"] < 1e-4
    assert 0.9 < ev["grid_mass"] <= 1.0 + 1e-3
    assert ev["energy"] > ev["energy_data"] > 0 and math.isnan(ev["sinkhorn"])
    for name in ("density.png", "samples_scatter.png", "training.gif", "metrics.csv"):
        assert (tmp_path / name).stat().st_size > 0
    # the likelihood table's hook, restored from the folder, scores the same held-out points
    from generative.likelihood import likelihood_of_run

    row = likelihood_of_run(tmp_path, 256)
    np.testing.assert_allclose(row["nll_nats"], ev["nll_nats"], rtol=1e-5)
