"""ALI / BiGAN: the losses of the thesis' Algorithm 1 on fixed networks, conditioning, and a
training run through `generative.core.train.run`."""

import csv
import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from generative import ali, gan
from generative.core import config as config_lib
from generative.core.train import run


def _tiny_ali(num_classes=0, **kw):
    settings = dict(
        latent_dim=2,
        data_shape=(2,),
        data=lambda key, n: jax.random.normal(key, (n, 2)),
        batch_size=6,
        lr=1e-3,
        num_classes=num_classes,
    )
    settings.update(kw)
    return ali.ALI(  # every layer's initialisation compiles a loop on CPU: few layers
        ali.MLPEncoder(2, (), None, num_classes=num_classes),
        gan.MLPGenerator(2, (5,), None, num_classes=num_classes),
        ali.JointDiscriminator((4,), (4,), (), pieces=2, num_classes=num_classes),
        **settings,
    )


def _sigmoid(t):
    return 1.0 / (1.0 + np.exp(-t))


def test_losses_equal_the_thesis_formulas_on_fixed_networks_with_labels():
    """L_d = −mean log D(x, G_z(x)) − mean log(1 − D(G_x(z), z)) and
    L_g = −mean log(1 − D(x, G_z(x))) − mean log D(G_x(z), z), with G_z(x) = μ + σ ε, from
    the three networks applied one by one (numpy in float64 for the logs); conditional ALI:
    the label changes all three networks' outputs."""
    model = _tiny_ali(num_classes=3)
    state = jax.jit(functools.partial(ali.init_state, model))(jax.random.PRNGKey(0))
    x, eps, z = np.random.default_rng(1).normal(size=(3, 6, 2)).astype(np.float32)
    x = 3.0 * x
    y = jnp.array([0, 1, 2, 0, 1, 2])

    @jax.jit
    def both(state, y):
        r, f, _ = ali.forward(model, state.params, state.model_state, x, y, eps, z)
        p = state.params
        mu, sigma = model.encoder.apply({"params": p["g"]["enc"]}, x, y)
        x_tilde = model.decoder.apply({"params": p["g"]["dec"]}, z, y)
        d = lambda a, b: model.discriminator.apply({"params": p["d"]}, a, b, y)
        by_hand = (d(x, mu + sigma * eps), d(x_tilde, z), mu, sigma, x_tilde)
        return ali.discriminator_loss(r, f), ali.generator_loss(r, f), by_hand

    l_d, l_g, (r, f, mu, sigma, x_tilde) = both(state, y)
    assert float(jnp.min(sigma)) > 0  # σ = softplus(·) > 0: a reparameterised Gaussian
    rho_q, rho_p = _sigmoid(np.asarray(r, np.float64)), _sigmoid(np.asarray(f, np.float64))
    expect_d = -np.log(rho_q).mean() - np.log(1 - rho_p).mean()
    expect_g = -np.log(1 - rho_q).mean() - np.log(rho_p).mean()
    np.testing.assert_allclose(l_d, expect_d, rtol=1e-5)
    np.testing.assert_allclose(l_g, expect_g, rtol=1e-5)
    # every network sees the label
    _, _, other = both(state, (y + 1) % 3)
    for a, b in zip((r, f, mu, sigma, x_tilde), other):
        assert float(jnp.max(jnp.abs(a - b))) > 1e-6
    with pytest.raises(ValueError, match="pass labels y"):
        ali.encode(model, state, x)


def test_training_run_logs_the_loss_terms_and_evaluates(tmp_path):
    """ali_grid_tiny through `run`: the logged L_d equals −E log σ(r) − E log(1 − σ(f)) from
    its logged terms, Jensen bounds each term by the logged mean logit, both optimizers made one
    update per step, and the evaluation writes its metrics and figures."""
    c = config_lib.resolve("generative.configs", "ali_grid_tiny")
    state = run(ali.make_experiment(c, tmp_path), c, tmp_path)
    rows = [r for r in csv.DictReader(open(tmp_path / "metrics.csv")) if r.get("d_loss")]
    assert len(rows) == c.num_steps // c.log_every
    softplus = lambda t: np.logaddexp(0.0, t)
    for r in rows:
        v = {k: float(r[k]) for k in ("d_loss", "d_loss_real", "d_loss_fake", "d_real", "d_fake")}
        assert v["d_loss"] == pytest.approx(v["d_loss_real"] + v["d_loss_fake"], rel=1e-5)
        assert v["d_loss_real"] >= softplus(-v["d_real"]) - 1e-6  # softplus is convex
        assert v["d_loss_fake"] >= softplus(v["d_fake"]) - 1e-6
        assert 0.0 <= float(r["d_accuracy"]) <= 1.0
    assert int(state.opt_state["g"].count) == int(state.opt_state["d"].count) == c.num_steps
    metrics = json.loads((tmp_path / "eval.json").read_text())
    assert metrics["step"] == c.num_steps and metrics["num_modes"] == 25
    assert 1 <= metrics["modes"] <= 25 and 0.0 <= metrics["high_quality"] <= 1.0
    assert metrics["recon_mse"] > 0
    for name in ("samples.png", "density.png", "latent.png", "training.gif"):
        assert (tmp_path / name).stat().st_size > 0
