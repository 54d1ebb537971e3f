"""Diffusion models against closed forms: DDPM's schedule and marginals, the SDEs'
coefficients, samplers and probability-flow likelihoods driven by the exact score of a
Gaussian, guidance with an exact classifier, and one short run of the command line."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.stats

from generative import diffusion as dm
from generative import sde as sde_lib

T = 1000


def _gaussian_eps(schedule, m, s):
    """The exact ε̂(x, c) = √(1 − ᾱ_t)(x − √ᾱ_t m)/(ᾱ_t s² + 1 − ᾱ_t) of data N(m, diag s²),
    t = round(c T)."""
    m, s2 = jnp.asarray(m), jnp.asarray(s) ** 2

    def eps(x, c):
        t = jnp.round(c * schedule.T).astype(jnp.int32)
        ab = schedule.alpha_bars[t - 1][:, None]
        return jnp.sqrt(1 - ab) * (x - jnp.sqrt(ab) * m[None]) / (ab * s2[None] + 1 - ab)

    return eps


def test_ddpm_schedule_and_closed_form_marginal_match_the_chain():
    with jax.enable_x64(True):
        sch = dm.linear_schedule(T, 1e-4, 0.02)
        np.testing.assert_allclose(float(sch.alpha_bars[-1]), 4.0358e-5, rtol=1e-4)
        x0 = jnp.array([-2.0, 0.5, 3.0])
        n = 3000

        # the chain x_t = √α_t x_{t−1} + √β_t ε, step by step, moments kept at every t
        def step(x, t):
            z = jax.random.normal(jax.random.fold_in(jax.random.PRNGKey(0), t), x.shape)
            x = jnp.sqrt(sch.alphas[t - 1]) * x + jnp.sqrt(sch.betas[t - 1]) * z
            return x, (x.mean(0), x.var(0))

        x_init = jnp.broadcast_to(x0, (n, 3))
        _, (mean, var) = jax.jit(lambda x: jax.lax.scan(step, x, jnp.arange(1, T + 1)))(x_init)
        for t in (1, 10, 100, 500, 1000):
            ab = float(sch.alpha_bars[t - 1])
            want_mean, want_var = math.sqrt(ab) * np.asarray(x0), 1 - ab
            se_mean, se_var = math.sqrt(want_var / n), want_var * math.sqrt(2 / n)
            assert np.all(np.abs(np.asarray(mean[t - 1]) - want_mean) < 4 * se_mean), t
            assert np.all(np.abs(np.asarray(var[t - 1]) - want_var) < 4 * se_var), t
        # q_sample is the closed form
        noise = jax.random.normal(jax.random.PRNGKey(1), (4, 3))
        t = jnp.array([1, 10, 500, 1000])
        got = dm.q_sample(sch, jnp.broadcast_to(x0, (4, 3)), t, noise)
        ab = np.asarray(sch.alpha_bars)[np.asarray(t) - 1][:, None]
        want = np.sqrt(ab) * np.asarray(x0)[None] + np.sqrt(1 - ab) * np.asarray(noise)
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_sde_coefficients_against_closed_forms_and_their_odes():
    with jax.enable_x64(True):
        vp, sub, ve = sde_lib.VPSDE(0.1, 20.0), sde_lib.SubVPSDE(0.1, 20.0), sde_lib.VESDE()
        mean, std = (float(a) for a in vp.marginal(1.0))
        np.testing.assert_allclose(mean, math.exp(-5.025), rtol=1e-12)
        np.testing.assert_allclose(mean, 0.0065716, rtol=1e-5)
        np.testing.assert_allclose(std, 0.99998, atol=5e-6)
        np.testing.assert_allclose(float(ve.sigma(0.5)), 0.70711, atol=5e-6)
        # the kernel moments solve dm/dt = a(t) m, dΣ/dt = 2 a(t) Σ + g(t)², m(0) = 1, Σ(0) = 0
        ts = [0.05, 0.3, 0.7, 1.0]
        for sde in (vp, sub, ve):
            coef = jax.jit(lambda t, sde=sde: jnp.stack([sde.drift_coef(t), sde.diffusion(t)]))

            def ode(t, y, coef=coef):
                a, g = np.asarray(coef(t))
                return [a * y[0], 2 * a * y[1] + g * g]

            sol = scipy.integrate.solve_ivp(ode, (0, 1), [1.0, 0.0], t_eval=ts, rtol=1e-10,
                                            atol=1e-12)  # fmt: skip
            m, s = (np.asarray(a) for a in sde.marginal(jnp.asarray(ts)))
            np.testing.assert_allclose(m, sol.y[0], rtol=1e-7, err_msg=sde.name)
            np.testing.assert_allclose(s**2, sol.y[1], rtol=1e-7, atol=1e-12, err_msg=sde.name)
        b = np.asarray(vp.integral_beta(jnp.asarray(ts)))
        np.testing.assert_allclose(np.asarray(sub.marginal(jnp.asarray(ts))[1]) ** 2,
                                   (1 - np.exp(-b)) ** 2, rtol=1e-12)  # fmt: skip
        # DDPM's β_i = β(t_i)/T on the grid t_i = (i − 1)/(T − 1): VP is DDPM's continuous limit
        sch = dm.linear_schedule(T)
        grid = jnp.arange(T) / (T - 1)
        np.testing.assert_allclose(np.asarray(vp.beta(grid)) / T, sch.betas, rtol=1e-12)


def _gh(points: int, dims: int):
    """Gauss–Hermite nodes [points^dims, dims] and weights for E over N(0, I)."""
    x, w = np.polynomial.hermite_e.hermegauss(points)
    grids = np.meshgrid(*[x] * dims, indexing="ij")
    weights = np.prod(np.meshgrid(*[w] * dims, indexing="ij"), axis=0)
    return np.stack([g.ravel() for g in grids], 1), weights.ravel() / weights.sum()


def test_probability_flow_likelihood_of_a_gaussian_is_exact():
    """VE SDE with the exact score of N(0, I₂): the probability-flow NLL equals −log N(x; 0, I)
    at every point, and its Gauss–Hermite expectation is the entropy ½ ln(2πe) = 1.418939
    nats per dimension."""
    with jax.enable_x64(True):
        ve = sde_lib.VESDE(0.01, 50.0)

        def score(x, t):
            _, std = ve.marginal(t)
            return -x / (1.0 + std**2)[:, None]

        var_T = 1.0 + float(ve.marginal(1.0)[1]) ** 2

        def prior(z):  # the exact marginal at T
            return scipy_free_logpdf(z, var_T)

        nodes, weights = _gh(8, 2)
        fn = jax.jit(lambda x: sde_lib.log_likelihood(ve, score, x, eps=0.0, rtol=1e-9,
                                                      atol=1e-9, prior_logp=prior)[0])  # fmt: skip
        nll = -np.asarray(fn(jnp.asarray(nodes)))
        exact = -scipy.stats.norm.logpdf(nodes).sum(1)
        np.testing.assert_allclose(nll, exact, atol=1e-4)
        np.testing.assert_allclose(weights @ nll / 2, 1.418939, atol=1e-4)
        np.testing.assert_allclose(0.5 * math.log(2 * math.pi * math.e), 1.418939, atol=1e-6)


def scipy_free_logpdf(z, var):
    """log N(z; 0, var I) summed over the last axis (jnp)."""
    d = z.shape[-1]
    return -0.5 * jnp.sum(z**2, -1) / var - 0.5 * d * math.log(2 * math.pi * var)


def test_probability_flow_likelihood_of_a_correlated_gaussian_exact_and_hutchinson():
    """VP SDE, data N(0, Σ) with a full Σ in 3-D: exact-divergence NLL = scipy's; Hutchinson's
    estimate (one Rademacher probe per copy) averages to it within its standard error."""
    with jax.enable_x64(True):
        vp = sde_lib.VPSDE(0.1, 20.0)
        a = np.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [-0.5, 0.3, 0.4]])
        cov = a @ a.T + 0.1 * np.eye(3)
        cov_j = jnp.asarray(cov)

        def score(x, t):
            m, s = vp.marginal(t)
            m, s = m[0], s[0]  # t is the same for the whole batch
            return -jnp.linalg.solve(m**2 * cov_j + s**2 * jnp.eye(3), x.T).T

        m1, s1 = (float(v) for v in vp.marginal(1.0))
        cov_T = m1**2 * cov + s1**2 * np.eye(3)
        prec_T, logdet_T = jnp.asarray(np.linalg.inv(cov_T)), np.linalg.slogdet(cov_T)[1]

        def prior(z):
            return -0.5 * jnp.sum((z @ prec_T) * z, -1) - 0.5 * (3 * math.log(2 * math.pi)
                                                                  + logdet_T)  # fmt: skip

        x = np.random.default_rng(0).multivariate_normal(np.zeros(3), cov, size=4)
        exact = scipy.stats.multivariate_normal(np.zeros(3), cov).logpdf(x)
        kw = dict(eps=0.0, rtol=1e-8, atol=1e-8, prior_logp=prior)
        lp = jax.jit(lambda x: sde_lib.log_likelihood(vp, score, x, **kw)[0])(jnp.asarray(x))
        np.testing.assert_allclose(np.asarray(lp), exact, atol=1e-4)
        copies = 128
        xs = jnp.asarray(np.repeat(x, copies, axis=0))
        kw.update(rtol=1e-6, atol=1e-6)  # the probe's noise dominates the solver's error
        hutch = jax.jit(lambda x, k: sde_lib.log_likelihood(vp, score, x, method="hutchinson",
                                                            key=k, **kw)[0])  # fmt: skip
        est = np.asarray(hutch(xs, jax.random.PRNGKey(3))).reshape(4, copies)
        se = est.std(1, ddof=1) / math.sqrt(copies)
        assert np.all(se > 1e-3)  # the estimate does vary with the probe
        assert np.all(np.abs(est.mean(1) - exact) < 4 * se), (est.mean(1), exact, se)


def test_ddim_and_ancestral_with_the_exact_eps_of_a_gaussian():
    with jax.enable_x64(True):
        sch = dm.linear_schedule(T)
        m, s = np.array([1.0, -1.0]), np.array([0.5, 2.0])
        eps = _gaussian_eps(sch, m, s)
        key = jax.random.PRNGKey(0)
        # DDIM (η = 0) is affine in x_T: from the exact marginal at T, written as mean ± std
        ab_T = float(sch.alpha_bars[-1])
        u = np.array([[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]])
        x_T = jnp.asarray(math.sqrt(ab_T) * m + np.sqrt(ab_T * s**2 + 1 - ab_T) * u)
        xs = jax.random.normal(jax.random.PRNGKey(1), (5, 2))
        n = 8000
        noise = jax.random.normal(jax.random.PRNGKey(2), (n, 2))

        @jax.jit
        def run(x_T, xs, noise):
            ddim = [dm.ddim_sample(eps, sch, key, x_T, steps)[0] for steps in (10, 1000)]
            eta1 = dm.ddim_sample(eps, sch, key, xs, T, eta=1.0)[0]
            post = dm.ancestral_sample(eps, sch, key, xs, variance="posterior")[0]
            return ddim, eta1, post, dm.ancestral_sample(eps, sch, key, noise)[0]

        ddim, eta1, post, x = jax.tree_util.tree_map(np.asarray, run(x_T, xs, noise))
        errors = []
        for out in ddim:
            np.testing.assert_allclose(out[1], m, atol=1e-9)  # the mean, exact at any steps
            errors.append(np.abs((out[2] - out[0]) / 2 - s) / s)
        assert np.all(errors[1] < 5e-3) and np.all(errors[1] < errors[0] / 10), errors
        # η = 1 on every step is ancestral sampling with the posterior variance β̃_t
        np.testing.assert_allclose(eta1, post, atol=1e-9)
        # ancestral sampling (σ_t² = β_t) from N(0, I) reproduces the data's moments
        assert np.all(np.abs(x.mean(0) - m) < 4 * s / math.sqrt(n))
        assert np.all(np.abs(x.std(0) - s) < 4 * s / math.sqrt(2 * n)), x.std(0)


def test_probability_flow_sampling_in_t_and_in_the_noise_ratio_is_exact_for_a_gaussian():
    """Data N(0, c² I): the score is −x/(m² c² + σ²), and the probability-flow ODE carries x_T
    to x_T √(m(ε)² c² + σ(ε)²) / √(m(T)² c² + σ(T)²) (each coordinate scaled; also along the
    path). ς for every SDE, t for VP (its other SDEs' t-ODE are the likelihood tests'), float64;
    ς(t) inverted exactly."""
    c = 0.7
    with jax.enable_x64(True):
        x_T = jax.random.normal(jax.random.PRNGKey(0), (3, 2))
        ts = jnp.linspace(1.0, 1e-3, 5)
        for sde in (sde_lib.VPSDE(), sde_lib.SubVPSDE(), sde_lib.VESDE()):
            t = jnp.linspace(1e-3, 1.0, 9)
            np.testing.assert_allclose(sde.time_of_noise_ratio(sde.noise_ratio(t)), t, rtol=1e-12)
            m, std = sde.marginal(t)
            np.testing.assert_allclose(sde.noise_ratio(t), std / m, rtol=1e-12)

            def score(x, t, sde=sde):
                m, std = sde.marginal(t)
                return -x / (m**2 * c**2 + std**2)[:, None]

            m, std = sde.marginal(ts)
            scale = jnp.sqrt(m**2 * c**2 + std**2)
            x0 = sde.prior_std * x_T
            exact = x0[None] * (scale / scale[0])[:, None, None]
            for variable in sde_lib.ODE_VARIABLES if sde.name == "vp" else ("sigma",):
                out = sde_lib.ode_sample(sde, score, x0, rtol=1e-10, atol=1e-10,
                                         save_every=4, variable=variable)  # fmt: skip
                np.testing.assert_allclose(out.path, exact, atol=1e-8, err_msg=variable)
                np.testing.assert_allclose(out.x, exact[-1], atol=1e-8, err_msg=variable)


def test_training_losses_at_the_exact_eps_equal_their_minimum():
    """With ε̂ the exact E[ε | x_t] of data N(0, s²), each loss is E_t[Var(ε | x_t)] =
    E_t[m² s²/(m² s² + σ²)] (weighted by g²/σ² with the likelihood weighting)."""
    with jax.enable_x64(True):
        s, n = 0.5, 100_000
        x0 = s * jax.random.normal(jax.random.PRNGKey(0), (n, 1))
        sch = dm.linear_schedule(T)
        ab = np.asarray(sch.alpha_bars)
        vp = sde_lib.VPSDE()

        def eps_fn(x, t):
            mt, st = vp.marginal(t)
            return st[:, None] * x / (mt**2 * s**2 + st**2)[:, None]

        @jax.jit
        def losses(x0):
            ddpm = dm.ddpm_loss(_gaussian_eps(sch, [0.0], [s]), sch, x0, jax.random.PRNGKey(1))
            return [ddpm] + [sde_lib.dsm_loss(vp, eps_fn, x0, jax.random.PRNGKey(2), eps=1e-3,
                                              likelihood_weighting=w) for w in (False, True)]  # fmt: skip

        ddpm, plain, weighted = (np.asarray(v) for v in losses(x0))
        want = np.mean(ab * s**2 / (ab * s**2 + 1 - ab))
        assert abs(ddpm.mean() - want) < 4 * ddpm.std() / math.sqrt(n), (ddpm.mean(), want)

        def integrand(t, weighting):  # the VP closed forms: β = 0.1 + 19.9 t, m², σ², g² = β
            b = 0.1 * t + 0.5 * 19.9 * t**2
            m2, s2 = math.exp(-b), -math.expm1(-b)
            w = (0.1 + 19.9 * t) / s2 if weighting else 1.0
            return w * m2 * s**2 / (m2 * s**2 + s2)

        for loss, weighting in ((plain, False), (weighted, True)):
            want = scipy.integrate.quad(integrand, 1e-3, 1, (weighting,), limit=200)[0] / (1 - 1e-3)
            se = loss.std() / math.sqrt(n)
            assert abs(loss.mean() - want) < 4 * se, (weighting, loss.mean(), want)


def test_annealed_langevin_with_the_exact_score_reaches_the_gaussian():
    with jax.enable_x64(True):
        m, s = np.array([2.0, -1.0]), np.array([0.3, 1.0])
        sigmas = dm.geometric_sigmas(5.0, 0.01, 10)

        def eps_fn(x, c):  # ε̂ = −σ s(x; σ) of the perturbed Gaussian N(m, s² + σ²)
            sigma = 0.01 * (5.0 / 0.01) ** c
            return sigma[:, None] * (x - m[None]) / (s[None] ** 2 + sigma[:, None] ** 2)

        n = 8000
        x0 = 5.0 * jax.random.normal(jax.random.PRNGKey(0), (n, 2))
        x, _ = jax.jit(lambda x: dm.annealed_langevin(eps_fn, sigmas, jax.random.PRNGKey(1), x,
                                                      steps=100, step_eps=2e-5))(x0)  # fmt: skip
        x = np.asarray(x)
        assert np.all(np.abs(x.mean(0) - m) < 4 * s / math.sqrt(n))
        assert np.all(np.abs(x.std(0) / s - 1) < 0.03), x.std(0)
        np.testing.assert_allclose(float(dm.ncsn_condition(sigmas[0], 5.0, 0.01)), 1.0)


def test_guidance_with_the_exact_classifier_gives_the_class_score():
    with jax.enable_x64(True):
        vp = sde_lib.VPSDE()
        centers, std = jnp.array([[-2.0, 0.0], [2.0, 1.0]]), 0.5

        def comp_logp(x, t):  # log N(x; m c_k, (m² std² + σ²) I) per class: [n, 2]
            mt, st = vp.marginal(t)
            var = (mt**2 * std**2 + st**2)[:, None]
            d2 = jnp.sum((x[:, None, :] - mt[:, None, None] * centers[None]) ** 2, -1)
            return -0.5 * d2 / var - jnp.log(2 * jnp.pi * var)

        def score(x, t):  # of the equal-weight mixture
            return jax.grad(lambda x: jnp.sum(jax.nn.logsumexp(comp_logp(x, t), -1)))(x)

        x = jax.random.normal(jax.random.PRNGKey(0), (6, 2)) * 2
        t = jnp.full((6,), 0.3)
        y = jnp.array([0, 1, 0, 1, 1, 0])
        guided = jax.jit(dm.guided_score(score, comp_logp, y, 1.0))(x, t)
        want = jax.jit(jax.grad(lambda x: jnp.sum(jnp.take_along_axis(comp_logp(x, t), y[:, None],
                                                                      1))))(x)  # fmt: skip
        np.testing.assert_allclose(np.asarray(guided), np.asarray(want), atol=1e-10)
    # the labelled sampler draws what sample_toy draws
    from generative.data.toy import mixture, sample_toy

    key = jax.random.PRNGKey(5)
    x, labels = dm.labelled_mixture("eight_gaussians", key, 500)
    np.testing.assert_allclose(x, sample_toy("eight_gaussians", key, 500), atol=1e-5)
    centers8, _ = mixture("eight_gaussians")
    assert np.max(np.abs(np.asarray(x) - centers8[np.asarray(labels)])) < 2.5


def test_networks_and_one_line_errors():
    from generative.configs import ddpm_checkerboard as preset
    from generative.core import config as config_lib
    from generative.nets import UNet

    assert preset.KINDS == dm.KINDS and preset.SAMPLERS == dm.SAMPLERS
    assert preset.SDES == sde_lib.SDES and preset.SOLVERS == sde_lib.SOLVERS
    assert preset.ODE_VARIABLES == sde_lib.ODE_VARIABLES
    key = jax.random.PRNGKey(0)
    for side, patch, mults in ((28, 2, (1, 2)), (32, 1, (1, 2, 2))):
        net = UNet(nf=8, mults=mults, groups=4, patch=patch)
        x, c = jnp.zeros((2, side, side, 1)), jnp.zeros((2,))
        params = jax.eval_shape(net.init, key, x, c)
        assert jax.eval_shape(net.apply, params, x, c).shape == (2, side, side, 1)
    errors = []
    with pytest.raises(ValueError, match="divisible by 8") as e:
        jax.eval_shape(UNet(nf=8, mults=(1, 2), patch=4).init, key, jnp.zeros((1, 28, 28, 1)),
                       jnp.zeros((1,)))  # fmt: skip
    errors.append(e)
    for bad, match in (
        (["eval.samplers=langevin"], "not available for model.kind=ddpm"),
        (["model.net=unet"], "needs model.net=mlp"),
        (["sample.ode_solver=rk4"], "tsit5"),
        (["ncsn.sigma_min=10.0"], "sigma_min"),
    ):
        with pytest.raises(ValueError, match=match) as e:
            config_lib.resolve("generative.configs", "ddpm_checkerboard_tiny", bad)
        errors.append(e)
    cfg = config_lib.resolve("generative.configs", "ncsn_checkerboard")
    with pytest.raises(ValueError, match="NCSN has no likelihood") as e:
        dm.log_likelihood(cfg, None, np.zeros((2, 2)), key)
    errors.append(e)
    with pytest.raises(ValueError, match="vp, subvp, ve") as e:
        sde_lib.make_sde("cosine")
    errors.append(e)
    with pytest.raises(ValueError, match="fixed number of steps") as e:
        sde_lib.ode_sample(sde_lib.VPSDE(), lambda x, t: x, jnp.zeros((2, 2)), solver="euler")
    errors.append(e)
    with pytest.raises(ValueError, match="valid choices: t, sigma") as e:
        sde_lib.ode_sample(sde_lib.VPSDE(), lambda x, t: x, jnp.zeros((2, 2)), variable="logsnr")
    errors.append(e)
    with pytest.raises(ValueError, match="sigma") as e:
        config_lib.resolve(
            "generative.configs", "ddpm_checkerboard_tiny", ["sample.ode_variable=s"]
        )
    errors.append(e)
    assert all("\n" not in str(e.value) for e in errors)


def test_tiny_run_from_the_command_line_and_the_likelihood_table(tmp_path, capsys):
    from generative.main import main

    run = tmp_path / "run"
    assert main(["train", "--config", "ddpm_checkerboard_tiny", "--workdir", str(run)]) == 0
    ev = json.loads((run / "eval.json").read_text())
    assert ev["kind"] == "ddpm" and ev["ancestral"]["nfe"] == 100 and ev["ancestral"]["finite"]
    assert ev["ancestral"]["energy"] > ev["energy_floor"] > 0 and "nll_nats" not in ev
    for name in ("samples_ancestral.png", "samples_density.png", "flow.gif"):
        assert (run / name).stat().st_size > 0
    table = tmp_path / "table"
    args = ["likelihood", "--workdir", str(table), f"likelihood.runs={run}", "likelihood.num=50"]
    assert main(args) == 0
    row = json.loads((table / "likelihood.json").read_text())[0]
    assert row["family"] == "diffusion" and row["model"] == "ddpm" and row["num"] == 50
    # above the checkerboard's entropy ln 32, the floor of any model's test NLL
    assert math.log(32) < row["nll_nats"] < 20 and row["bits_per_dim"] == pytest.approx(
        row["nll_nats"] / (2 * math.log(2))
    )
    assert f"{row['nll_nats']:.3f}" in (table / "likelihood.md").read_text()
