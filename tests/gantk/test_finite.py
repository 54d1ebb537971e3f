"""The finite-width discriminator against its infinite-width limit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gantk import dynamics
from gantk.finite import make_finite_discriminator, num_sgd_steps
from gantk.kernels import default_kernel_config, make_kernel


def _kcfg(depth, width=128, architecture="relu"):
    kc = default_kernel_config()
    kc.architecture = architecture
    kc.depth = depth
    kc.width = width
    return kc


def test_empirical_ntk_monte_carlo_converges_to_analytic_kernel():
    # E_θ Θ_θ = k up to O(1/width); the Monte-Carlo mean of 16 seeds fluctuates by
    # O(1/sqrt(width · seeds)): the error halves with every 4x in width.
    x = 0.7 * jax.random.normal(jax.random.PRNGKey(0), (4, 2))  # [4, 2]
    exact = make_kernel(_kcfg(depth=2))(x, x)
    keys = jax.random.split(jax.random.PRNGKey(0), 16)
    discs = [
        make_finite_discriminator(_kcfg(2, width), loss="ipm", t=1.0, lr=0.1)
        for width in (32, 128, 512)
    ]

    @jax.jit
    def mean_ntks(keys):  # one compilation for every width
        return [
            jnp.mean(jax.vmap(lambda k, d=d: d.ntk(x, x, d.init(k, (-1, 2)).params))(keys), 0)
            for d in discs
        ]

    errors = [float(jnp.linalg.norm(m - exact) / jnp.linalg.norm(exact)) for m in mean_ntks(keys)]
    assert errors[0] > 1.5 * errors[1] > 2.25 * errors[2], errors
    assert errors[2] < 0.025, errors


def test_antisymmetric_init_is_exactly_zero_with_the_single_network_kernel():
    kc = _kcfg(depth=2, width=32)
    anti = make_finite_discriminator(kc, loss="lsgan", t=1.0, lr=0.1, antisymmetric=True)
    plain = make_finite_discriminator(kc, loss="lsgan", t=1.0, lr=0.1, antisymmetric=False)
    key = jax.random.PRNGKey(3)
    x = jax.random.normal(key, (5, 3))
    p_anti = anti.init(key, (-1, 3)).params
    p_plain = plain.init(key, (-1, 3)).params
    assert np.all(np.asarray(anti.apply(p_anti, x)) == 0.0)
    assert float(jnp.max(jnp.abs(plain.apply(p_plain, x)))) > 1e-2  # a plain init is not 0
    # Θ_anti = (Θ_θ1 + Θ_θ2)/2 = Θ_θ at initialisation.
    np.testing.assert_allclose(
        anti.ntk(x, x, p_anti), plain.ntk(x, x, p_plain), rtol=1e-5, atol=1e-5
    )


def test_one_sgd_step_moves_f_by_lr_times_empirical_ntk_times_dual_rhs_float64():
    # The time convention: f ← f + η Θ_θ(z, X) g + O(η²), g = ∇_f L (plain means).
    with jax.enable_x64(True):
        kc = _kcfg(depth=2, width=16)
        lr = 1e-6
        disc = make_finite_discriminator(kc, loss="lsgan", t=lr, lr=lr, antisymmetric=False)
        assert disc.num_steps == 1
        key = jax.random.PRNGKey(1)
        fakes, reals = jax.random.normal(key, (3, 2)), jax.random.normal(key, (2, 2)) + 1.0
        z = jax.random.normal(jax.random.PRNGKey(2), (4, 2))
        state = disc.init(key, (-1, 2), jnp.float64)
        X = jnp.concatenate([fakes, reals])
        g = dynamics.dual_rhs(disc.loss, 3, 2)(disc.apply(state.params, X))
        moved = disc.apply(disc.train(state, fakes, reals).params, z)
        predicted = disc.apply(state.params, z) + lr * disc.ntk(z, X, state.params) @ g
        np.testing.assert_allclose(moved, predicted, rtol=0, atol=1e-10)


def test_trained_finite_discriminator_approaches_infinite_width():
    key = jax.random.PRNGKey(0)
    fakes = 0.5 * jax.random.normal(jax.random.fold_in(key, 1), (3, 2)) - 0.5
    reals = 0.5 * jax.random.normal(jax.random.fold_in(key, 2), (3, 2)) + 0.5
    X = jnp.concatenate([fakes, reals])
    z = jnp.concatenate([X, jax.random.normal(key, (4, 2))])  # training and fresh points
    t, lr = 1.0, 0.05  # 20 SGD steps
    k = make_kernel(_kcfg(depth=1))
    losses = ("ipm", "lsgan")
    f_inf = jnp.stack(
        [k(z, X) @ dynamics.dual_coefficients(name, k(X, X), 3, 3, t) for name in losses]
    )
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    widths = (64, 512, 4096)
    discs = [
        [make_finite_discriminator(_kcfg(1, w), loss=name, t=t, lr=lr) for name in losses]
        for w in widths
    ]

    @jax.jit
    def trained_outputs(keys):  # [widths, seeds, losses, points], one compilation
        def one(key, ds):  # one network per seed, trained on each loss; f_0 = 0
            return jnp.stack(
                [d.apply(d.train(d.init(key, (-1, 2)), fakes, reals).params, z) for d in ds]
            )

        return jnp.stack([jax.vmap(lambda k, ds=ds: one(k, ds))(keys) for ds in discs])

    f = trained_outputs(keys)
    errors = np.asarray(jnp.mean(jnp.max(jnp.abs(f - f_inf[None, None]), -1), 1))
    assert np.all(errors[:-1] > errors[1:]), errors
    scale = np.asarray(jnp.max(jnp.abs(f_inf), -1))
    assert np.all(errors[-1] < 0.1 * scale), (errors, scale)


def test_reset_draws_a_fresh_network_and_keep_continues():
    kc = _kcfg(depth=1, width=8)
    key = jax.random.PRNGKey(0)
    fakes, reals = jnp.zeros((2, 2)), jnp.ones((2, 2))
    reset = make_finite_discriminator(kc, loss="ipm", t=0.3, lr=0.1, reset=True)
    keep = make_finite_discriminator(kc, loss="ipm", t=0.3, lr=0.1, reset=False)
    state = keep.init(key, (-1, 2))
    once = keep.fit(state, fakes, reals, key)
    twice = keep.fit(once, fakes, reals, key)
    # IPM gradients are constant in f, the objective only grows when training continues.
    assert float(keep.objective(twice.params, fakes, reals)) > float(
        keep.objective(once.params, fakes, reals)
    )
    r1 = reset.fit(twice, fakes, reals, jax.random.PRNGKey(5))
    r2 = reset.fit(once, fakes, reals, jax.random.PRNGKey(5))
    leaves = zip(jax.tree_util.tree_leaves(r1.params), jax.tree_util.tree_leaves(r2.params))
    assert all(np.array_equal(a, b) for a, b in leaves)


def test_bad_inputs_raise_one_line_value_errors():
    with pytest.raises(ValueError, match="valid: ipm"):
        make_finite_discriminator(_kcfg(1), loss="wgan", t=1.0, lr=0.1)
    with pytest.raises(ValueError, match="positive"):
        num_sgd_steps(1.0, 0.0)
    assert num_sgd_steps(1.0, 0.01) == 100
