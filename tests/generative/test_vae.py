"""VAE bounds against closed forms (analytic KL, probabilistic PCA), decoder likelihoods
against scipy, and one short training run through `generative.core.train.run`."""

import csv
import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import scipy.stats

from generative import vae
from generative.core import config as config_lib


def test_analytic_kl_matches_monte_carlo():
    with jax.enable_x64(True):
        mu = np.array([[0.3, -1.2, 0.0], [2.0, 0.5, -0.7]])
        logvar = np.array([[-0.5, 0.4, -2.0], [0.8, -1.0, 0.1]])
        n = 200_000

        @jax.jit
        def kl_and_log_ratios(mu, logvar):
            big = (n,) + mu.shape
            m, lv = jnp.broadcast_to(mu, big), jnp.broadcast_to(logvar, big)
            z = vae.reparameterize(jax.random.PRNGKey(0), m, lv)
            ratio = vae.log_normal_diag(z, m, lv) - vae.log_standard_normal(z)
            return vae.gaussian_kl(mu, logvar), ratio

        kl, log_ratio = (np.asarray(a) for a in kl_and_log_ratios(mu, logvar))
        mc, se = log_ratio.mean(0), log_ratio.std(0) / math.sqrt(n)
        # the closed form of the course slides, written out: −½ Σ (1 + log σ² − μ² − σ²)
        slides = -0.5 * np.sum(1 + logvar - mu**2 - np.exp(logvar), axis=-1)
        np.testing.assert_allclose(kl, slides, rtol=1e-12)
        assert np.all(kl > 0)
        assert np.all(np.abs(mc - kl) < 4 * se), (mc, kl, se)


def _ppca(d=5, latent=2, n=400, seed=0):
    """Data, the Tipping & Bishop maximum-likelihood (W, b, σ²) of their sample covariance, and
    the exact posterior q(z|x) = N(M⁻¹Wᵀ(x − b), σ² M⁻¹), M = WᵀW + σ²I (diagonal here)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d)) * np.linspace(1.5, 0.3, d)
    x = rng.normal(size=(n, d)) @ a.T + rng.normal(size=d)
    b = x.mean(0)
    s = np.cov(x, rowvar=False, bias=True)
    lam, u = np.linalg.eigh(s)
    lam, u = lam[::-1], u[:, ::-1]
    sigma2 = lam[latent:].mean()
    w = u[:, :latent] * np.sqrt(lam[:latent] - sigma2)
    return x, s, lam, w, b, sigma2


def _linear_gaussian(w, b, sigma2, shift=0.0, var_scale=1.0):
    m = w.T @ w + sigma2 * np.eye(w.shape[1])
    m_inv = np.linalg.inv(m)
    np.testing.assert_allclose(m, np.diag(np.diag(m)), atol=1e-10)  # exact posterior is diagonal
    post_var = sigma2 * np.diag(m_inv) * var_scale
    w_, b_, a_ = jnp.asarray(w), jnp.asarray(b), jnp.asarray(m_inv @ w.T)

    def encode(x):
        mu = (x - b_[None]) @ a_.T + shift
        return mu, jnp.broadcast_to(jnp.log(jnp.asarray(post_var)), mu.shape)

    def loglik(z, x):
        return vae.gaussian_log_likelihood(x, z @ w_.T + b_[None], 0.5 * jnp.log(sigma2))

    return encode, loglik


def test_ppca_elbo_equals_exact_log_likelihood():
    with jax.enable_x64(True):
        x, s, lam, w, b, sigma2 = _ppca()
        d, latent = w.shape
        c = w @ w.T + sigma2 * np.eye(d)
        exact = scipy.stats.multivariate_normal(b, c).logpdf(x)  # [n]
        # the closed form is the maximum-likelihood solution: tr(C⁻¹S) = D and the mean
        # log-likelihood is −½ [D log 2π + Σ_{i≤L} log λ_i + (D − L) log σ² + D]
        np.testing.assert_allclose(np.trace(np.linalg.solve(c, s)), d, rtol=1e-10)
        best = -0.5 * (d * np.log(2 * np.pi) + np.log(lam[:latent]).sum()
                       + (d - latent) * np.log(sigma2) + d)  # fmt: skip
        np.testing.assert_allclose(exact.mean(), best, rtol=1e-10)

        encode, loglik = _linear_gaussian(w, b, sigma2)
        xs = jnp.asarray(x[:20])
        # with the exact posterior every importance weight is p(x): log w_i = log p(x)
        lw = jax.jit(vae.iwae_log_weights, static_argnums=(0, 1, 4))(
            encode, loglik, xs, jax.random.PRNGKey(1), 7
        )
        np.testing.assert_allclose(lw, np.broadcast_to(exact[:20], (7, 20)), rtol=0, atol=1e-9)


def test_iwae_rises_with_k_towards_the_log_likelihood():
    with jax.enable_x64(True):
        x, _, _, w, b, sigma2 = _ppca(seed=1)
        d = w.shape[0]
        c = w @ w.T + sigma2 * np.eye(d)
        xs = x[:10]
        exact = scipy.stats.multivariate_normal(b, c).logpdf(xs).mean()
        shift, var_scale = 0.8, 4.0  # a non-optimal encoder (too wide, off-centre)
        encode, loglik = _linear_gaussian(w, b, sigma2, shift, var_scale)
        # its exact ELBO: E_q log p(x|z) − KL with E‖x − Wz − b‖² = ‖x − Wμ − b‖² + tr(WΣWᵀ)
        mu, logvar = (np.asarray(a) for a in jax.jit(encode)(jnp.asarray(xs)))
        resid = xs - mu @ w.T - b
        trace = np.einsum("ij,nj->n", w**2, np.exp(logvar))
        ell = -0.5 * d * np.log(2 * np.pi * sigma2) - ((resid**2).sum(1) + trace) / (2 * sigma2)
        kl = 0.5 * np.sum(mu**2 + np.exp(logvar) - 1 - logvar, axis=1)
        elbo_exact = (ell - kl).mean()

        # 100 draws of 1000 log-weights (IWAE_k from disjoint groups of k of them), and 100
        # one-sample ELBO estimates with the analytic KL (`vae.elbo`)
        def draws(key):
            k1, k2 = jax.random.split(key)
            lw = vae.iwae_log_weights(encode, loglik, jnp.asarray(xs), k1, 1000)
            return lw, vae.elbo(encode, loglik, jnp.asarray(xs), k2)["elbo"].mean()

        lw, elbo_est = jax.jit(jax.vmap(draws))(jax.random.split(jax.random.PRNGKey(10), 100))
        elbo_est = np.asarray(elbo_est)
        assert abs(elbo_est.mean() - elbo_exact) < 4 * elbo_est.std() / 10, elbo_est.mean()
        means, ses = [], []
        for k in (1, 10, 100, 1000):
            groups = np.asarray(lw).reshape(100, 1000 // k, k, len(xs))
            bound = scipy.special.logsumexp(groups, axis=2) - np.log(k)
            bound = bound.mean(-1).reshape(-1)  # mean over examples
            means.append(float(bound.mean()))
            ses.append(float(bound.std() / math.sqrt(bound.size)))
        means, ses = np.array(means), np.array(ses)
        assert abs(means[0] - elbo_exact) < 4 * ses[0], (means[0], elbo_exact, ses[0])
        assert exact - elbo_exact > 1.0  # the encoder is far from the posterior
        for j in range(3):  # monotone, beyond the Monte Carlo error
            assert means[j + 1] - means[j] > 3 * math.hypot(ses[j], ses[j + 1]), means
        assert abs(means[-1] - exact) < 3 * ses[-1], (means[-1], exact, ses[-1])


def test_decoder_log_likelihoods_match_scipy():
    with jax.enable_x64(True):
        rng = np.random.default_rng(3)
        logits = rng.normal(scale=3.0, size=(4, 3, 3, 1))
        x = (rng.uniform(size=logits.shape) < 0.5).astype(np.float64)
        p = 1 / (1 + np.exp(-logits))
        ref = scipy.stats.bernoulli(p).logpmf(x).reshape(4, -1).sum(1)
        got = vae.bernoulli_log_likelihood(jnp.asarray(logits), jnp.asarray(x))
        np.testing.assert_allclose(got, ref, rtol=1e-10)
        # saturated logits (where 1 − sigmoid(ℓ) rounds off): log σ(−ℓ) without cancellation
        big = jnp.array([[40.0, -40.0]])
        got = vae.bernoulli_log_likelihood(big, jnp.array([[0.0, 1.0]]))
        np.testing.assert_allclose(got, 2 * scipy.special.log_expit(-40.0), rtol=1e-12)

        mean, y = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
        sigma = 0.3
        ref = scipy.stats.norm(mean, sigma).logpdf(y).sum(1)
        got = vae.gaussian_log_likelihood(jnp.asarray(y), jnp.asarray(mean), np.log(sigma))
        np.testing.assert_allclose(got, ref, rtol=1e-10)
        np.testing.assert_allclose(vae.bits_per_dim(np.log(2.0) * 7, 7), 1.0)
        # log-mean-exp at magnitudes where exp under/overflows
        a = jnp.array([[-1e4, 1e4], [-1e4 + np.log(3.0), 1e4 - np.log(3.0)]])
        np.testing.assert_allclose(
            vae.log_mean_exp(a, axis=0), [-1e4 + np.log(2.0), 1e4 + np.log(2 / 3)], rtol=1e-14
        )


def _tiny(overrides=()):
    return config_lib.resolve("generative.configs", "vae_digits_tiny", list(overrides))


def test_bad_options_and_image_sizes_are_one_line_value_errors():
    from generative.configs import vae_digits as preset

    assert (preset.DATASETS, preset.NETS) == (vae.DATASETS, vae.NETS)
    assert (preset.DECODERS, preset.SIGMA_MODES) == (vae.DECODERS, vae.SIGMA_MODES)
    key = jax.random.PRNGKey(0)
    for size in (28, 32):  # 28×28 is padded to 32 at the encoder and cropped at the decoder
        model = vae.VAE((size, size, 1), latent_dim=3, net="conv", hidden=8, nf=4)
        x, z = jnp.zeros((2, size, size, 1)), jnp.zeros((2, 3))
        params = jax.eval_shape(model.init, key, x, z)
        out = jax.eval_shape(functools.partial(model.apply, method=vae.VAE.decode), params, z)
        assert out.shape == (2, size, size, 1)
    errors = []
    conv = _tiny(["model.net=conv"])
    with pytest.raises(ValueError) as e:
        vae.build_model(conv, (20, 20, 1))
    errors.append(e)
    bad = _tiny()
    with bad.unlocked():
        bad.model.decoder = "poisson"
    with pytest.raises(ValueError, match="bernoulli, gaussian") as e:
        vae.build_model(bad, (28, 28, 1))
    errors.append(e)
    with pytest.raises(ValueError, match="poisson") as e:
        _tiny(["model.decoder=poisson"])
    errors.append(e)
    other = _tiny()
    with other.unlocked():
        other.family = "vqvae"
    with pytest.raises(ValueError, match="family") as e:
        vae.make_experiment(other)
    errors.append(e)
    with pytest.raises(ValueError, match="net=mlp") as e:
        _tiny(["data.name=toy", "model.net=conv"])
    errors.append(e)
    assert "20×20" in str(errors[0].value)
    assert all("\n" not in str(e.value) for e in errors)


def test_training_decreases_the_loss_and_logs_its_terms(tmp_path):
    from generative.core.train import run

    cfg = _tiny()
    run(vae.make_experiment(cfg, workdir=tmp_path), cfg, tmp_path)
    with open(tmp_path / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["loss"]]
    loss, recon, kl, elbo = (np.array([float(r[k]) for r in rows]) for k in
                             ("loss", "recon", "kl", "elbo"))  # fmt: skip
    np.testing.assert_allclose(loss, recon + kl, rtol=1e-5)
    np.testing.assert_allclose(loss, -elbo, rtol=1e-6)
    assert [int(r["step"]) for r in rows] == [15, 30]
    assert loss[-1] < 0.9 * loss[0], loss
    ev = json.loads((tmp_path / "eval.json").read_text())
    assert "font digits" in ev["data"] and ev["iwae_k"] == 8 and ev["num_test"] == 64
    # log-mean-exp ≥ mean of the same log-weights (Jensen): NLL ≤ −ELBO on every example
    assert ev["nll_nats"] <= -ev["elbo"]
    np.testing.assert_allclose(ev["nll_bits_per_dim"], ev["nll_nats"] / (784 * math.log(2)))
    for name in ("samples.png", "reconstructions.png", "training.gif"):
        assert (tmp_path / name).stat().st_size > 0
