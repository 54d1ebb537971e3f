import jax
import jax.numpy as jnp
import numpy as np
import pytest

from video import metrics, perceptual


@pytest.fixture(scope="module")
def lpips_params():
    p = perceptual.LPIPSAlex().init(
        jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)), jnp.zeros((1, 64, 64, 3))
    )["params"]
    # the released linear layers are non-negative; keep that property with random weights
    return jax.tree_util.tree_map_with_path(
        lambda path, w: jnp.abs(w) if "lin" in jax.tree_util.keystr(path) else w, p
    )


def test_lpips_properties_random_weights(lpips_params, tmp_path):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(size=(2, 3, 64, 64, 1)), jnp.float32)
    y = jnp.asarray(rng.uniform(size=(2, 3, 64, 64, 1)), jnp.float32)
    d = perceptual.lpips_distance(lpips_params, x, y)
    assert d.shape == (2, 3) and np.all(np.asarray(d) > 0)
    np.testing.assert_allclose(
        np.asarray(perceptual.lpips_distance(lpips_params, x, x)), 0, atol=1e-7
    )
    np.testing.assert_allclose(
        np.asarray(perceptual.lpips_distance(lpips_params, y, x)), np.asarray(d), rtol=1e-5
    )
    np.testing.assert_array_equal(
        np.asarray(perceptual.lpips_distance(lpips_params, x, y)), np.asarray(d)
    )
    # round trip through the PyTorch-named .npz
    path = tmp_path / "lpips.npz"
    np.savez(path, **perceptual.lpips_params_to_torch(lpips_params))
    loaded = perceptual.load_lpips_params(str(path))
    np.testing.assert_allclose(
        np.asarray(perceptual.lpips_distance(loaded, x, y)), np.asarray(d), rtol=1e-6
    )


def test_lpips_and_fvd_refuse_without_weights(tmp_path):
    with pytest.raises(perceptual.MissingWeightsError, match="eval.lpips_weights"):
        perceptual.load_lpips_params(None)
    with pytest.raises(perceptual.MissingWeightsError, match=str(tmp_path / "i3d.npz")):
        perceptual.load_i3d_variables(str(tmp_path / "i3d.npz"))
    np.savez(tmp_path / "bad.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not an LPIPS"):
        perceptual.load_lpips_params(str(tmp_path / "bad.npz"))


def test_i3d_fvd_random_weights(tmp_path):
    # random He-scaled weights filled from the abstract shapes (a jitted init of I3D takes ~1 min
    # to compile on CPU; eval_shape is instant)
    shapes = jax.eval_shape(
        perceptual.InceptionI3D().init, jax.random.PRNGKey(1), jnp.zeros((1, 8, 32, 32, 3))
    )
    rng = np.random.default_rng(0)

    def fill(path, s):
        k = jax.tree_util.keystr(path)
        if "kernel" in k:
            return jnp.asarray(
                rng.normal(size=s.shape) * np.sqrt(2.0 / np.prod(s.shape[:-1])), jnp.float32
            )
        if "var" in k:
            return jnp.asarray(rng.uniform(0.5, 1.5, s.shape), jnp.float32)
        return jnp.asarray(0.1 * rng.normal(size=s.shape), jnp.float32)

    variables = jax.tree_util.tree_map_with_path(fill, shapes)
    path = tmp_path / "i3d.npz"
    tf_named = perceptual.i3d_variables_to_tf(variables)
    assert "RGB/inception_i3d/Mixed_4f/Branch_1/Conv3d_0b_3x3/conv_3d/w" in tf_named
    assert "RGB/inception_i3d/Logits/Conv3d_0c_1x1/conv_3d/b" in tf_named
    np.savez(path, **tf_named)
    loaded = perceptual.load_i3d_variables(str(path))
    rng = np.random.default_rng(0)
    real = rng.uniform(size=(6, 8, 32, 32, 1)).astype(np.float32)
    fake = np.clip(real + 0.3 * rng.normal(size=real.shape), 0, 1).astype(np.float32)
    emb = perceptual.i3d_embeddings(loaded, jnp.asarray(real), 32)
    assert emb.shape == (6, 400)
    np.testing.assert_allclose(
        np.asarray(emb),
        np.asarray(perceptual.i3d_embeddings(variables, jnp.asarray(real), 32)),
        rtol=1e-5,
        atol=1e-6,
    )
    d = perceptual.fvd(loaded, real, fake, resize_to=32, batch_size=6)
    assert d > 0
    assert perceptual.fvd(loaded, real, real, resize_to=32, batch_size=6) == pytest.approx(
        0, abs=1e-6 * d
    )
    assert perceptual.fvd(loaded, fake, real, resize_to=32, batch_size=6) == pytest.approx(
        d, rel=1e-6
    )
    emb_fake = perceptual.i3d_embeddings(loaded, jnp.asarray(fake), 32)
    assert d == pytest.approx(metrics.frechet_distance(emb, emb_fake), rel=1e-6)
