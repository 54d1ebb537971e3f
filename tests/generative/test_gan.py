"""GANs against exact answers: the optimal discriminator and the Jensen-Shannon value, every
loss against numpy, the gradient penalty by hand, clipping and critic updates with seeds
vmapped. (A training run through `generative.core.train.run`: tests/generative/test_ali.py.)"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.stats

from generative import gan
from generative.core import config as config_lib


def _np_softplus(x):
    return np.logaddexp(0.0, x)


def test_optimal_discriminator_maximises_the_value_and_reaches_minus_log4_plus_2jsd():
    """p = N(0, 1), q = N(1.5, 1) on [−8, 9.5] (mass outside < 1e-15): Newton's method on the logits of the discretised value
    function Σ_i Δx [p_i log D_i + q_i log(1 − D_i)] lands on p/(p+q) (the maximisation is
    pointwise), and V(D*) = −log 4 + 2 JSD(p‖q) with JSD by scipy quadrature."""
    p_pdf = scipy.stats.norm(0.0, 1.0).pdf
    q_pdf = scipy.stats.norm(1.5, 1.0).pdf
    with jax.enable_x64(True):
        xs = np.linspace(-8.0, 9.5, 17501)
        w = np.full_like(xs, xs[1] - xs[0])
        w[[0, -1]] /= 2  # trapezoid weights
        wp, wq = jnp.asarray(p_pdf(xs) * w), jnp.asarray(q_pdf(xs) * w)

        def value(t):
            d = jax.nn.sigmoid(t)
            return gan.minimax_value(d, d, wp, wq)

        grad = jax.grad(value)

        @jax.jit
        def newton(t):
            def body(_, t):
                g, hdiag = jax.jvp(grad, (t,), (jnp.ones_like(t),))  # separable: H·1 = diag H
                return t - g / hdiag

            return jax.lax.fori_loop(0, 30, body, t)

        t = newton(jnp.zeros_like(wp))
        d_star = gan.optimal_discriminator(jnp.asarray(p_pdf(xs)), jnp.asarray(q_pdf(xs)))
        np.testing.assert_allclose(jax.nn.sigmoid(t), d_star, rtol=1e-9, atol=1e-12)
        v_star = float(gan.minimax_value(d_star, d_star, wp, wq))

    def jsd_integrand(x):
        p, q = p_pdf(x), q_pdf(x)
        m = 0.5 * (p + q)
        return 0.5 * p * np.log(p / m) + 0.5 * q * np.log(q / m)

    jsd = scipy.integrate.quad(jsd_integrand, -8, 9.5, epsabs=1e-13, limit=200)[0]
    assert 0.1 < jsd < np.log(2)
    np.testing.assert_allclose(v_star, -np.log(4.0) + 2.0 * jsd, rtol=1e-8)


def test_losses_match_numpy_formulas():
    real = np.array([2.0, -0.5, 0.3, 4.0], np.float32)
    fake = np.array([-1.0, 0.7, -3.0, 1.5], np.float32)
    a, b, c = -1.0, 1.0, 0.25
    sp = _np_softplus
    log_sig = lambda x: -sp(-x)  # log σ(x)
    expected = {
        # name: (L_D, L_G)
        "minimax": (
            -log_sig(real).mean() - np.log1p(-1 / (1 + np.exp(-fake))).mean(),
            np.log1p(-1 / (1 + np.exp(-fake))).mean(),
        ),
        "non_saturating": (
            -log_sig(real).mean() - log_sig(-fake).mean(),
            -np.log(1 / (1 + np.exp(-fake))).mean(),
        ),
        "lsgan": (((real - b) ** 2).mean() + ((fake - a) ** 2).mean(), ((fake - c) ** 2).mean()),
        "wgan": (fake.mean() - real.mean(), -fake.mean()),
        "wgan_gp": (fake.mean() - real.mean(), -fake.mean()),
        "hinge": (
            np.maximum(0, 1 - real).mean() + np.maximum(0, 1 + fake).mean(),
            -fake.mean(),
        ),
    }
    assert set(expected) == set(gan.LOSSES)
    for name, (ld, lg) in expected.items():
        got_d, terms = gan.discriminator_loss(name, real, fake, (a, b, c))
        got_g = gan.generator_loss(name, fake, (a, b, c))
        np.testing.assert_allclose(got_d, ld, rtol=1e-5, err_msg=name)
        np.testing.assert_allclose(terms["d_loss_real"] + terms["d_loss_fake"], ld, rtol=1e-5)
        np.testing.assert_allclose(got_g, lg, rtol=1e-5, err_msg=name)
    # the default LSGAN labels are Mao et al.'s (a, b, c) = (0, 1, 1)
    np.testing.assert_allclose(
        gan.discriminator_loss("lsgan", real, fake)[0],
        ((real - 1) ** 2).mean() + (fake**2).mean(),
        rtol=1e-6,
    )


def test_gradient_penalty_by_hand():
    """Linear critic x·w: ∇ = w at every interpolate, penalty (‖w‖ − 1)²; quadratic critic
    ½‖x‖²: ∇ = x̂ = ε real + (1 − ε) fake, penalty mean (‖x̂‖ − 1)²."""
    w = jnp.array([[3.0], [4.0], [12.0]])  # ‖w‖ = 13
    real, fake = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    fake = 10.0 * fake
    eps = jnp.array([0.0, 0.25, 0.5, 0.9, 1.0])
    linear = lambda x: (x @ w)[:, 0]
    np.testing.assert_allclose(gan.gradient_penalty(linear, real, fake, eps), 144.0, rtol=1e-5)
    real_im, fake_im = real.reshape(5, 3, 1, 1), fake.reshape(5, 1, 3, 1)
    quad = lambda x: 0.5 * jnp.sum(x**2, axis=(1, 2, 3))
    gp = gan.gradient_penalty(quad, real_im, fake_im.reshape(5, 3, 1, 1), eps)
    e = np.asarray(eps)[:, None]
    x_hat = e * np.asarray(real) + (1 - e) * np.asarray(fake)
    norms = np.sqrt((x_hat**2).sum(1))
    np.testing.assert_allclose(gp, ((norms - 1) ** 2).mean(), rtol=1e-5)


def _tiny_model(**kw):
    settings = dict(
        latent_dim=2,
        data_shape=(2,),
        data=lambda key, n: 2.0 + jax.random.normal(key, (n, 2)),
        batch_size=8,
        n_critic=2,
        lr=1e-3,
    )
    settings.update(kw)
    return gan.GAN(
        gan.MLPGenerator(2, (6,), "batch"), gan.MLPDiscriminator((5,), pieces=3), **settings
    )


def test_vmapped_seeds_equal_single_runs_with_clipping_and_n_critic():
    """A clipped WGAN (c = 0.3, n_critic = 2) with Adam: init and two steps vmapped over three
    seeds with their own learning rate and β₁ equal the un-vmapped ones seed by seed; every
    critic weight within [−c, c] (some at the bound); two critic updates per generator update."""
    model = _tiny_model(loss="wgan", clip=0.3)
    init = functools.partial(gan.init_state, model)
    step = gan.train_step(model)
    keys = jnp.stack([jax.random.PRNGKey(i) for i in range(3)])
    lrs = jnp.array([1e-3, 3e-3, 1e-2])
    b1s = jnp.array([0.5, 0.8, 0.9])
    states = jax.jit(jax.vmap(init))(keys, lrs, b1s)
    singles = [jax.jit(init)(keys[i], lrs[i], b1s[i]) for i in range(3)]
    vstep, one = jax.jit(jax.vmap(step)), jax.jit(step)
    for t in range(2):
        step_keys = jnp.stack([jax.random.PRNGKey(10 * t + i) for i in range(1, 4)])
        states, metrics = vstep(states, step_keys)
        for i in range(3):
            singles[i], m = one(singles[i], step_keys[i])
            for a, b in zip(
                jax.tree_util.tree_leaves(singles[i]), jax.tree_util.tree_leaves(states)
            ):
                np.testing.assert_allclose(b[i], a, rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(metrics["g_loss"][i], m["g_loss"], rtol=1e-5)
    hyper = states.opt_state["d"].hyperparams
    np.testing.assert_allclose(hyper["learning_rate"], lrs)
    np.testing.assert_allclose(hyper["b1"], b1s)
    # the three seeds did train differently
    g = [np.asarray(jax.tree_util.tree_leaves(s.params["g"])[0]) for s in singles]
    assert not np.allclose(g[0], g[1])
    d_leaves = jax.tree_util.tree_leaves(states.params["d"])
    assert max(float(jnp.max(jnp.abs(w))) for w in d_leaves) == pytest.approx(0.3)
    assert sum(int(jnp.sum(jnp.abs(w) < 0.29)) for w in d_leaves) > 0  # not all clipped
    # n_critic = 2 discriminator updates per generator update
    assert states.opt_state["d"].count.tolist() == [4, 4, 4]
    assert states.opt_state["g"].count.tolist() == [2, 2, 2]
    assert states.step.tolist() == [2, 2, 2]


def test_conditional_networks_depend_on_the_label():
    key = jax.random.PRNGKey(0)
    z = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    nets = [
        (gan.MLPGenerator(2, (6,), None, num_classes=10), z),
        (gan.MLPDiscriminator((5,), 2, num_classes=10), z[:, :2]),
    ]

    @jax.jit
    def outputs(y, y_other):
        out = []
        for net, x in nets:
            variables = net.init(key, x, y)
            out.append((net.apply(variables, x, y), net.apply(variables, x, y_other)))
        return out

    y0 = jnp.zeros(4, jnp.int32)
    for (out0, out1), (net, _) in zip(outputs(y0, jnp.full(4, 7, jnp.int32)), nets):
        assert out0.shape == out1.shape
        assert float(jnp.max(jnp.abs(out0 - out1))) > 1e-4, type(net).__name__
    for out0, out1 in outputs(y0, y0):
        np.testing.assert_array_equal(out0, out1)
    with pytest.raises(ValueError, match="pass labels y"):
        nets[0][0].init(key, z)
    # images: the label as constant one-hot planes behind the channels
    images = np.random.default_rng(1).uniform(size=(2, 4, 4, 1)).astype(np.float32)
    planes = gan._label_planes(images, jnp.array([3, 9]), 10)
    assert planes.shape == (2, 4, 4, 11)
    np.testing.assert_array_equal(planes[..., :1], images)
    np.testing.assert_array_equal(planes[0, :, :, 1:].reshape(16, 10), np.eye(10)[[3] * 16])
    np.testing.assert_array_equal(planes[1, :, :, 1:].reshape(16, 10), np.eye(10)[[9] * 16])


def test_unknown_loss_is_a_one_line_value_error():
    for make in (
        lambda: gan.discriminator_loss("wasserstein", jnp.zeros(2), jnp.zeros(2)),
        lambda: gan.generator_loss("wasserstein", jnp.zeros(2)),
        lambda: _tiny_model(loss="wasserstein"),
        lambda: config_lib.resolve("generative.configs", "gan_grid", ["loss=wasserstein"]),
    ):
        with pytest.raises(ValueError, match="wasserstein") as err:
            make()
        message = str(err.value)
        assert "\n" not in message and "non_saturating" in message and "wgan_gp" in message
