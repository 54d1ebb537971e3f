"""ALI / BiGAN: the losses of the thesis' Algorithm 1 on fixed networks, conditioning, and
seeds vmapped with their own learning rate and β₁."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from generative import ali, gan


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
    k = jax.random.split(jax.random.PRNGKey(1), 3)
    x = 3.0 * jax.random.normal(k[0], (6, 2))
    eps, z = jax.random.normal(k[1], (6, 2)), jax.random.normal(k[2], (6, 2))
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


def test_vmapped_seeds_equal_single_runs():
    model = _tiny_ali()
    init = functools.partial(ali.init_state, model)
    step = ali.train_step(model)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    lrs, b1s = jnp.array([1e-3, 1e-2, 3e-2]), jnp.array([0.5, 0.7, 0.9])
    step_keys = jax.random.split(jax.random.PRNGKey(5), 3)
    states, metrics = jax.jit(jax.vmap(step))(jax.jit(jax.vmap(init))(keys, lrs, b1s), step_keys)
    one_init, one_step = jax.jit(init), jax.jit(step)
    for i in range(3):
        single, m = one_step(one_init(keys[i], lrs[i], b1s[i]), step_keys[i])
        for a, b in zip(jax.tree_util.tree_leaves(single), jax.tree_util.tree_leaves(states)):
            np.testing.assert_allclose(b[i], a, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(metrics["d_loss"][i], m["d_loss"], rtol=1e-5)
    np.testing.assert_allclose(states.opt_state["g"].hyperparams["learning_rate"], lrs)
    np.testing.assert_allclose(states.opt_state["g"].hyperparams["b1"], b1s)
    assert states.opt_state["g"].count.tolist() == [1, 1, 1]
    assert states.opt_state["d"].count.tolist() == [1, 1, 1]
    # encoder and decoder are trained together by one optimizer
    assert set(states.params["g"]) == {"enc", "dec"}
