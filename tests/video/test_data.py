import jax
import jax.numpy as jnp
import numpy as np
import pytest

from generative.data import moving_mnist as mm
from video import data


def _fold(u):
    """Straight line u folded into [0, 36] by mirror reflections (closed form of bouncing)."""
    period = 2 * mm.MAX_POS
    r = np.mod(u, period)
    return np.where(r <= mm.MAX_POS, r, period - r)


@pytest.fixture(scope="module")
def det_traj():
    keys = jax.random.split(jax.random.PRNGKey(0), 300)
    return jax.tree.map(np.asarray, jax.vmap(lambda k: mm.trajectories(k, 60, False))(keys))


@pytest.fixture(scope="module")
def sto_traj():
    keys = jax.random.split(jax.random.PRNGKey(1), 300)
    return jax.tree.map(np.asarray, jax.vmap(lambda k: mm.trajectories(k, 60, True))(keys))


def test_initial_state_distribution(det_traj):
    p0, v0 = det_traj.positions[:, 0], det_traj.velocities[:, 0]
    assert p0.min() == 0 and p0.max() == mm.MAX_POS and np.all(p0 == np.round(p0))
    assert set(np.unique(v0)) == set(range(-4, 5))


@pytest.mark.parametrize("which", ["det_traj", "sto_traj"])
def test_digits_stay_on_canvas(which, request):
    t = request.getfixturevalue(which)
    assert t.positions.min() >= 0.0 and t.positions.max() <= mm.MAX_POS
    # a rendered single digit keeps all its mass on the canvas
    digit = jnp.ones((1, 28, 28))
    frames = mm.render(digit, jnp.asarray(t.positions[:4][:1]))  # [T, 64, 64]
    np.testing.assert_allclose(np.asarray(frames.sum((1, 2))), 28 * 28)


def test_deterministic_bounces_reflect(det_traj):
    p0, v0 = det_traj.positions[:, 0], det_traj.velocities[:, 0]
    t = np.arange(60)[None, :, None]
    expected = _fold(p0[:, None] + t * v0[:, None])  # [N, T, 2]
    np.testing.assert_allclose(det_traj.positions, expected, atol=1e-4)
    # speed magnitudes never change; a bounce flips the sign of that axis only
    assert np.all(np.abs(det_traj.velocities) == np.abs(v0)[:, None])
    b = det_traj.bounces[:, 1:]
    flipped = det_traj.velocities[:, 1:] == -det_traj.velocities[:, :-1]
    assert b.sum() > 100
    assert np.all(flipped[b]) and np.all(
        (det_traj.velocities[:, 1:] == det_traj.velocities[:, :-1])[~b]
    )


def test_stochastic_bounces_redraw_away_from_wall(sto_traj):
    p, v, b = sto_traj.positions, sto_traj.velocities, sto_traj.bounces
    assert np.all(v == np.round(v)) and np.abs(v).max() <= 4
    free = ~b[:, 1:].any(-1)  # steps without contact are straight and keep the velocity
    np.testing.assert_allclose((p[:, 1:] - p[:, :-1])[free], v[:, :-1][free], atol=1e-4)
    np.testing.assert_array_equal(v[:, 1:][free], v[:, :-1][free])
    # after a contact on an axis the velocity on that axis points away from the wall hit
    bounced = b[:, 1:]
    near_low = p[:, 1:] <= mm.MAX_SPEED
    near_high = p[:, 1:] >= mm.MAX_POS - mm.MAX_SPEED
    vb = v[:, 1:]
    assert bounced.sum() > 100
    single = bounced & (bounced.sum(-1, keepdims=True) == 1)  # one contact in that step
    assert np.all(((near_low & (vb >= 0)) | (near_high & (vb <= 0)))[single])
    # velocities are redrawn, not reflected: magnitudes change and the other axis changes too
    any_b = bounced.any(-1)
    mag_changed = np.abs(vb) != np.abs(v[:, :-1])
    assert mag_changed[any_b].mean() > 0.5
    other = bounced[..., ::-1] & ~bounced
    assert (vb != v[:, :-1])[other].mean() > 0.5
    assert not np.all(p == np.round(p))  # contact points make positions fractional


@pytest.mark.parametrize("stochastic", [True, False])
def test_same_seed_same_videos(stochastic):
    digits = jnp.asarray(np.random.default_rng(0).uniform(size=(50, 28, 28)), jnp.float32)
    a = mm.moving_mnist_batch(jax.random.PRNGKey(3), digits, 4, 6, stochastic)
    b = mm.moving_mnist_batch(jax.random.PRNGKey(3), digits, 4, 6, stochastic)
    c = mm.moving_mnist_batch(jax.random.PRNGKey(4), digits, 4, 6, stochastic)
    assert a.shape == (4, 6, 64, 64, 1) and a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert np.abs(np.asarray(a) - np.asarray(c)).max() > 0
    t1 = mm.moving_mnist_test_set(digits, stochastic, num_videos=7, num_frames=6, chunk=4)
    t2 = mm.moving_mnist_test_set(digits, stochastic, num_videos=7, num_frames=6, chunk=4)
    assert t1.shape == (7, 6, 64, 64, 1) and t1.dtype == np.uint8
    np.testing.assert_array_equal(t1, t2)


def test_render_sums_and_clips():
    d = jnp.stack([jnp.full((28, 28), 0.7), jnp.full((28, 28), 0.6)])
    pos = jnp.array([[[0.0, 0.0]], [[10.4, 9.6]]])  # rounding -> (10, 10)
    f = np.asarray(mm.render(d, pos))[0]
    assert f[0, 0] == pytest.approx(0.7) and f[10, 10] == 1.0 and f[37, 37] == pytest.approx(0.6)
    assert f[38, 38] == 0.0


def test_font_digits_offline():
    d = data.font_digits("test", 64)
    assert d.images.shape == (64, 28, 28) and d.images.dtype == np.float32
    assert 0 <= d.images.min() and d.images.max() <= 1 and "font" in d.source
    assert set(np.unique(d.labels)) <= set(range(10))
    # distinct images, ink away from the border (MNIST-like framing)
    assert len({x.tobytes() for x in d.images}) == 64
    assert d.images[:, :1].mean() < 0.01 and d.images[:, 13:15].mean() > 0.1
    tr = data.font_digits("train", 64)
    assert not np.any([np.allclose(a, b) for a in tr.images[:10] for b in d.images[:10]])


def test_mnist_through_tfds_and_fallback(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=6):
        d = data.load_digits("train", source="mnist")
    assert d.images.shape == (6, 28, 28) and d.images.max() <= 1.0 and "MNIST" in d.source
    auto = data.load_digits("test", source="auto", data_dir=str(tmp_path), num_font_digits=8)
    assert "font" in auto.source
    with pytest.raises(FileNotFoundError, match="MNIST is not prepared under"):
        data.load_digits("test", source="mnist", data_dir=str(tmp_path / "none"))
    with pytest.raises(ValueError, match="valid choices: auto, mnist, font"):
        data.load_digits("train", source="emnist")


def _write_kth(root):
    rng = np.random.default_rng(0)
    for person in (1, 2, 21):
        folder = root / "walking"
        folder.mkdir(parents=True, exist_ok=True)
        np.save(
            folder / f"person{person:02d}_walking_d1_uncomp.npy",
            rng.integers(0, 256, (30, 64, 64), dtype=np.uint8),
        )
    import imageio.v3 as iio

    pngs = root / "boxing" / "person03_boxing_d2_uncomp"
    pngs.mkdir(parents=True)
    for i in range(25):
        iio.imwrite(pngs / f"{i:04d}.png", np.full((64, 64), i, np.uint8))


def test_kth_layout(tmp_path):
    _write_kth(tmp_path)
    train = data.kth(tmp_path, "train", seq_len=20)
    test = data.kth(tmp_path, "test", seq_len=20)
    assert len(train) == 3 and len(test) == 1
    x = train.batch(seed=0, step=5, batch_size=4)
    assert x.shape == (4, 20, 64, 64, 1) and x.dtype == np.float32 and x.max() <= 1
    np.testing.assert_array_equal(x, train.batch(seed=0, step=5, batch_size=4))
    # png clips are consecutive frames
    png = data.kth(tmp_path, "train", seq_len=20)
    png.videos = [v for v in png.videos if v.path.is_dir()]
    c = png.batch(0, 0, 1)[0, :, 0, 0, 0] * 255
    np.testing.assert_allclose(np.diff(c), 1.0, atol=1e-4)
    assert test.test_clips(3).shape == (3, 20, 64, 64, 1)
    with pytest.raises(data.MissingDatasetError, match=str(tmp_path / "nope")):
        data.kth(tmp_path / "nope", "train", 20)


def test_human36m_layout_and_stride(tmp_path):
    for s in (1, 9):
        (tmp_path / f"S{s}").mkdir()
        frames = np.arange(200, dtype=np.uint8)[:, None, None, None] * np.ones(
            (1, 64, 64, 3), np.uint8
        )
        np.save(tmp_path / f"S{s}" / "Walking.npy", frames)
    h = data.human36m(tmp_path, "train", seq_len=16)
    x = h.batch(0, 0, 2)
    assert x.shape == (2, 16, 64, 64, 3)
    np.testing.assert_allclose(np.diff(x[0, :, 0, 0, 0] * 255), 8.0, atol=1e-3)  # stride 8
    assert len(data.human36m(tmp_path, "test", seq_len=16)) == 1
    with pytest.raises(data.MissingDatasetError, match="subjects"):
        data.human36m(tmp_path / "S1", "test", 16)


def test_bair_mocked_tfds(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=5):
        b = data.bair(None, "train", seq_len=12)
        x = b.batch(seed=0, step=2, batch_size=2)
        assert x.shape == (2, 12, 64, 64, 3) and x.dtype == np.float32 and x.max() <= 1
        np.testing.assert_array_equal(x, data.bair(None, "train", 12).batch(0, 2, 2))
        assert b.test_clips(3).shape == (3, 12, 64, 64, 3)
    with pytest.raises(data.MissingDatasetError, match="tfds build bair_robot_pushing_small"):
        data.bair(str(tmp_path), "test", 12)
