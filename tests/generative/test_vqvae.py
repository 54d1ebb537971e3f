"""VQ-VAE quantiser: straight-through Jacobian, where each loss term's gradient goes, the EMA
codebook update against numpy, code perplexity, and one training step of the EMA preset."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from generative import vqvae
from generative.core import config as config_lib
from generative.layers import plain_xla


def _codes(seed=0, n=(2, 3, 3), d=4, k=5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=n + (d,)), rng.normal(size=(k, d))


def test_quantize_picks_the_nearest_code_and_passes_gradients_straight_through():
    with jax.enable_x64(True):
        z, cb = _codes()
        dist = ((z[..., None, :] - cb) ** 2).sum(-1)  # [..., K]
        idx = np.argmin(dist, -1)
        z_st, z_q, got = vqvae.quantize(jnp.asarray(z), jnp.asarray(cb))
        np.testing.assert_array_equal(got, idx)
        np.testing.assert_allclose(z_q, cb[idx], rtol=0, atol=0)
        np.testing.assert_allclose(z_st, cb[idx], rtol=0, atol=1e-15)
        jac_z = jax.jacobian(lambda a: vqvae.quantize(a, jnp.asarray(cb))[0])(jnp.asarray(z))
        m = z.size
        np.testing.assert_array_equal(jac_z.reshape(m, m), np.eye(m))
        jac_cb = jax.jacobian(lambda c: vqvae.quantize(jnp.asarray(z), c)[0])(jnp.asarray(cb))
        assert not np.any(jac_cb)


def test_commitment_trains_only_the_encoder_and_codebook_loss_only_the_codebook():
    with jax.enable_x64(True):
        z, cb = _codes(1)
        idx = np.argmin(((z[..., None, :] - cb) ** 2).sum(-1), -1)
        diff = z - cb[idx]  # z_e − e, [..., D]

        def term(loss, a, c):
            return loss(a, vqvae.quantize(a, c)[1])

        for loss, to_z, to_cb in (
            (vqvae.commitment_loss, True, False),
            (vqvae.codebook_loss, False, True),
        ):
            gz, gc = jax.grad(lambda a, c, f=loss: term(f, a, c), argnums=(0, 1))(
                jnp.asarray(z), jnp.asarray(cb)
            )
            want_z = 2 * diff / z.size if to_z else np.zeros_like(z)
            want_cb = np.zeros_like(cb)
            if to_cb:
                np.add.at(want_cb, idx.reshape(-1), -2 * diff.reshape(-1, z.shape[-1]) / z.size)
            np.testing.assert_allclose(gz, want_z, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(gc, want_cb, rtol=1e-12, atol=1e-15)
        # both terms have the same value, (1/n) Σ (z_e − e)²
        np.testing.assert_allclose(
            term(vqvae.codebook_loss, jnp.asarray(z), jnp.asarray(cb)), np.mean(diff**2)
        )


def test_ema_update_matches_a_numpy_recomputation():
    with jax.enable_x64(True):
        rng = np.random.default_rng(2)
        k, d, gamma, eps = 6, 3, 0.9, 1e-3
        state = {
            "codebook": rng.normal(size=(k, d)),
            "cluster_size": rng.uniform(0.5, 2.0, size=k),
            "embed_sum": rng.normal(size=(k, d)),
        }
        z = rng.normal(size=(4, 5, d))
        idx = rng.integers(0, k - 1, size=(4, 5))  # code k-1 unused: it only decays
        new = vqvae.ema_update({a: jnp.asarray(b) for a, b in state.items()}, jnp.asarray(z),
                               jnp.asarray(idx), gamma, eps)  # fmt: skip
        zf, idf = z.reshape(-1, d), idx.reshape(-1)
        size, embed = np.empty(k), np.empty((k, d))
        for i in range(k):
            sel = idf == i
            size[i] = gamma * state["cluster_size"][i] + (1 - gamma) * sel.sum()
            embed[i] = gamma * state["embed_sum"][i] + (1 - gamma) * zf[sel].sum(0)
        total = size.sum()
        smoothed = (size + eps) / (total + k * eps) * total
        np.testing.assert_allclose(new["cluster_size"], size, rtol=1e-12)
        np.testing.assert_allclose(new["embed_sum"], embed, rtol=1e-12)
        np.testing.assert_allclose(new["codebook"], embed / smoothed[:, None], rtol=1e-12)


def test_data_initialised_codes_are_distinct_encoder_outputs():
    z = np.arange(2 * 3 * 3 * 2, dtype=np.float32).reshape(2, 3, 3, 2)  # 18 distinct vectors
    codes = np.asarray(vqvae.init_codebook(jax.random.PRNGKey(0), "data", 5, 2, jnp.asarray(z)))
    rows = {tuple(v) for v in z.reshape(-1, 2)}
    assert codes.shape == (5, 2) and len({tuple(v) for v in codes}) == 5
    assert all(tuple(v) in rows for v in codes)


def test_code_perplexity():
    k = 8
    assert float(vqvae.code_perplexity(jnp.arange(4 * k) % k, k)) == pytest.approx(k, rel=1e-6)
    assert float(vqvae.code_perplexity(jnp.full((3, 5), 2), k)) == pytest.approx(1.0, abs=1e-6)
    # p = (1/2, 1/4, 1/4): exp(H) = 2^1.5
    got = float(vqvae.code_perplexity(jnp.array([0, 0, 3, 5]), k))
    assert got == pytest.approx(2**1.5, rel=1e-6)


def test_ema_training_step_updates_the_codebook_and_logs_the_loss_terms():
    cfg = config_lib.resolve("generative.configs", "vqvae_digits_tiny", [])
    exp = vqvae.make_experiment(cfg)
    model = vqvae.build_model(cfg, (28, 28, 1))
    # a state of the init's structure filled from numpy (compiling the init's random
    # initialisers costs more than this whole test)
    abstract = jax.eval_shape(exp.init, jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    state = jax.tree_util.tree_map(
        lambda a: jnp.asarray(rng.normal(scale=0.3, size=a.shape), a.dtype), abstract
    )
    state = state._replace(
        step=jnp.zeros((), jnp.int32),
        opt_state=jax.tree_util.tree_map(jnp.zeros_like, state.opt_state),
        model_state={**state.model_state, "cluster_size": jnp.ones(16)},
    )
    batch = jnp.asarray(exp.batch_fn(0))
    # flax's convolutions (plain_xla): the CPU forms of generative.layers compute the same
    # function (tests/core/test_layers.py) but take longer to compile
    with plain_xla():
        new, metrics = jax.jit(exp.step)(state, batch, jax.random.PRNGKey(1))

    @jax.jit
    @plain_xla()
    def reference(state):
        out = vqvae.forward(model, state.params, state.model_state, batch)
        ema = vqvae.ema_update(state.model_state, out["z_e"], out["idx"], 0.99, 1e-5)
        return out["z_e"], ema

    z_e, want = reference(state)
    assert z_e.shape == (32, 7, 7, 4)  # a 7×7 grid of 4-d vectors
    for name in ("codebook", "cluster_size", "embed_sum"):
        np.testing.assert_allclose(new.model_state[name], want[name], rtol=2e-5, atol=1e-6)
    assert "codebook" not in new.params  # the EMA codebook is state, not a parameter
    np.testing.assert_allclose(
        metrics["loss"], metrics["recon"] + 0.25 * metrics["commitment"], rtol=1e-6
    )
    assert 1.0 <= float(metrics["perplexity"]) <= 16.0


def test_bad_options_and_image_sizes_are_one_line_value_errors():
    from generative.configs import vqvae_digits as preset

    assert (preset.DATASETS, preset.UPDATES) == (vqvae.DATASETS, vqvae.UPDATES)
    assert preset.CODEBOOK_INITS == vqvae.CODEBOOK_INITS
    cfg = config_lib.resolve("generative.configs", "vqvae_digits_tiny", [])
    errors = []
    with pytest.raises(ValueError, match="multiples of 4") as e:
        vqvae.build_model(cfg, (30, 30, 1))
    errors.append(e)
    with pytest.raises(ValueError, match="ema, loss") as e:
        config_lib.resolve(
            "generative.configs", "vqvae_digits_tiny", ["model.codebook_update=kmeans"]
        )
    errors.append(e)
    bad = cfg.copy_and_resolve_references()
    with bad.unlocked():
        bad.model.codebook_update = "kmeans"
    with pytest.raises(ValueError, match="kmeans") as e:
        vqvae.build_model(bad, (28, 28, 1))
    errors.append(e)
    assert all("\n" not in str(e.value) for e in errors)
