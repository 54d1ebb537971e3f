"""LPIPS and FVD against independent float64 numpy forwards of the published networks.

The references below are written from the papers and the released weight layouts (PyTorch
state-dict names and [O, I, kh, kw] kernels for LPIPS, TensorFlow names and
[kt, kh, kw, in, out] kernels for I3D), not from the flax modules: weights are drawn in those
layouts, saved as the converted `.npz` files and loaded through the library's loaders.
"""

import jax.numpy as jnp
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from video import perceptual

# ----------------------------------------------------------------------------- LPIPS reference
# AlexNet features (torchvision indices 0, 3, 6, 8, 10): (out channels, kernel, stride, padding);
# a 3×3 stride-2 max-pool (no padding) precedes conv2 and conv3 (Zhang et al. 2018, lpips v0.1).
_ALEX = [
    (0, 64, 11, 4, 2),
    (3, 192, 5, 1, 2),
    (6, 384, 3, 1, 1),
    (8, 256, 3, 1, 1),
    (10, 256, 3, 1, 1),
]
_SHIFT = np.array([-0.030, -0.088, -0.188])
_SCALE = np.array([0.458, 0.448, 0.450])


def _lpips_state_dict(rng) -> dict:
    """Random weights of `lpips.LPIPS(net='alex', version='0.1')` in its PyTorch layout."""
    sd, cin = {}, 3
    for i, (idx, c, k, _, _) in enumerate(_ALEX):
        sd[f"net.slice{i + 1}.{idx}.weight"] = rng.normal(size=(c, cin, k, k)) * np.sqrt(
            2.0 / (cin * k * k)
        )
        sd[f"net.slice{i + 1}.{idx}.bias"] = 0.1 * rng.normal(size=c)
        sd[f"lin{i}.model.1.weight"] = rng.uniform(0.0, 1.0, size=(1, c, 1, 1))  # non-negative
        cin = c
    return {k: v.astype(np.float32) for k, v in sd.items()}


def _conv2d(x, w, b, stride, pad):
    """Cross-correlation of x [N, C, H, W] with w [O, C, k, k] (PyTorch Conv2d)."""
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    k = w.shape[-1]
    patches = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("nchwij,ocij->nohw", patches, w, optimize=True) + b[None, :, None, None]


def _alexnet_features(sd, img):
    """img [N, H, W, 3] in [0, 1] -> the five ReLU feature maps [N, C, h, w] (float64)."""
    h = ((2.0 * img.astype(np.float64) - 1.0) - _SHIFT) / _SCALE
    h = h.transpose(0, 3, 1, 2)
    feats = []
    for i, (idx, _, _, s, p) in enumerate(_ALEX):
        if i in (1, 2):
            h = sliding_window_view(h, (3, 3), axis=(2, 3))[:, :, ::2, ::2].max(axis=(-2, -1))
        w = sd[f"net.slice{i + 1}.{idx}.weight"].astype(np.float64)
        b = sd[f"net.slice{i + 1}.{idx}.bias"].astype(np.float64)
        h = np.maximum(_conv2d(h, w, b, s, p), 0.0)
        feats.append(h)
    return feats


def _lpips_reference(sd, x, y):
    """Σ_l mean_hw Σ_c w_lc (x̂_lchw − ŷ_lchw)², x̂ the features unit-normalised over channels."""
    total = np.zeros(len(x))
    for i, (fx, fy) in enumerate(zip(_alexnet_features(sd, x), _alexnet_features(sd, y))):
        nx = fx / (np.sqrt((fx**2).sum(1, keepdims=True)) + 1e-10)
        ny = fy / (np.sqrt((fy**2).sum(1, keepdims=True)) + 1e-10)
        w = sd[f"lin{i}.model.1.weight"].reshape(-1).astype(np.float64)
        total += np.einsum("nchw,c->nhw", (nx - ny) ** 2, w).mean(axis=(1, 2))
    return total


def _load_lpips(sd, tmp_path):
    path = tmp_path / "lpips.npz"
    np.savez(path, **sd)
    return perceptual.load_lpips_params(str(path))


LPIPS_SHAPE = (2, 64, 64, 3)  # one compiled shape for every LPIPS call: 15², 7², 3², 3², 3² maps


def test_lpips_matches_numpy_alexnet_reference(tmp_path):
    rng = np.random.default_rng(0)
    sd = _lpips_state_dict(rng)
    params = _load_lpips(sd, tmp_path)
    x = rng.uniform(size=LPIPS_SHAPE).astype(np.float32)
    y = np.clip(x + 0.3 * rng.normal(size=x.shape), 0, 1).astype(np.float32)
    y[1] = rng.uniform(size=LPIPS_SHAPE[1:])  # an unrelated image: a larger distance
    d = np.asarray(perceptual.lpips_distance(params, jnp.asarray(x), jnp.asarray(y)))
    ref = _lpips_reference(sd, x, y)
    assert ref[1] > ref[0] > 0
    np.testing.assert_allclose(d, ref, rtol=2e-5)
    # the loader inverts to the same PyTorch state dict
    back = perceptual.lpips_params_to_torch(params)
    assert sorted(back) == sorted(sd)
    for k in sd:
        np.testing.assert_array_equal(back[k], sd[k], err_msg=k)


def test_lpips_identity_symmetry_and_gray_input(tmp_path):
    rng = np.random.default_rng(1)
    sd = _lpips_state_dict(rng)
    params = _load_lpips(sd, tmp_path)
    x = jnp.asarray(rng.uniform(size=LPIPS_SHAPE), jnp.float32)
    y = jnp.asarray(rng.uniform(size=LPIPS_SHAPE), jnp.float32)
    np.testing.assert_array_equal(np.asarray(perceptual.lpips_distance(params, x, x)), 0.0)
    dxy = np.asarray(perceptual.lpips_distance(params, x, y))
    np.testing.assert_allclose(np.asarray(perceptual.lpips_distance(params, y, x)), dxy, rtol=1e-6)
    # gray frames [..., 1] are compared as RGB frames with three equal channels
    g1 = rng.uniform(size=(2, 1) + LPIPS_SHAPE[1:3] + (1,)).astype(np.float32)
    g2 = rng.uniform(size=g1.shape).astype(np.float32)
    dg = np.asarray(perceptual.lpips_distance(params, jnp.asarray(g1), jnp.asarray(g2)))
    assert dg.shape == (2, 1)
    rgb = lambda g: np.repeat(g[:, 0], 3, axis=-1)
    np.testing.assert_allclose(dg[:, 0], _lpips_reference(sd, rgb(g1), rgb(g2)), rtol=2e-5)


def test_lpips_hand_computed_sign_detector(tmp_path):
    """conv1 channel 0 = +R, channel 1 = −R at kernel tap (2, 2), no bias: with stride 4 and
    padding 2 the layer-1 feature at (i, j) is (relu(v), relu(−v), 0, …) with v the normalised
    red value of pixel (4i, 4j), v > 0 iff red > 0.485 (the LPIPS shift −0.030). Unit
    normalisation makes it e0 or e1, so a pixel whose sign differs adds w0 + w1, one that agrees
    adds 0; the other layers have zero linear weights. LPIPS = (w0 + w1)·#differing / 15²."""
    rng = np.random.default_rng(2)
    sd = _lpips_state_dict(rng)
    w1 = np.zeros((64, 3, 11, 11), np.float32)
    w1[0, 0, 2, 2], w1[1, 0, 2, 2] = 1.0, -1.0
    sd["net.slice1.0.weight"], sd["net.slice1.0.bias"] = w1, np.zeros(64, np.float32)
    lin0 = rng.uniform(size=(1, 64, 1, 1)).astype(np.float32)
    lin0[0, :2, 0, 0] = 0.3, 0.5
    sd["lin0.model.1.weight"] = lin0
    for i in range(1, 5):
        sd[f"lin{i}.model.1.weight"] = np.zeros_like(sd[f"lin{i}.model.1.weight"])
    params = _load_lpips(sd, tmp_path)
    x = rng.uniform(size=LPIPS_SHAPE).astype(np.float32)  # green and blue do not matter
    y = rng.uniform(size=LPIPS_SHAPE).astype(np.float32)
    x[..., 0] = 1.0
    y[0, :32, :, 0] = 0.0  # sampled rows 0, 4, …, 28 differ: 8 × 15 positions
    y[0, 32:, :, 0] = 0.49  # just above the 0.485 threshold: same sign as white
    y[1, ..., 0] = 0.47  # just below: every one of the 225 positions differs
    d = np.asarray(perceptual.lpips_distance(params, jnp.asarray(x), jnp.asarray(y)))
    np.testing.assert_allclose(d, [0.8 * 120 / 225, 0.8], rtol=1e-5)


def test_lpips_and_fvd_refuse_without_weights(tmp_path):
    with pytest.raises(perceptual.MissingWeightsError, match="eval.lpips_weights"):
        perceptual.load_lpips_params(None)
    with pytest.raises(perceptual.MissingWeightsError, match=str(tmp_path / "i3d.npz")):
        perceptual.load_i3d_variables(str(tmp_path / "i3d.npz"))
    np.savez(tmp_path / "bad.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not an LPIPS"):
        perceptual.load_lpips_params(str(tmp_path / "bad.npz"))


# ----------------------------------------------------------------------------- I3D reference
# Inflated Inception-v1 (Carreira & Zisserman 2017), as in DeepMind's kinetics-i3d: Mixed
# blocks (branch 0 1×1; branch 1 1×1 -> 3³; branch 2 1×1 -> 3³; branch 3 3³ max-pool -> 1×1).
_INCEPTION = [
    ("Mixed_3b", 64, 96, 128, 16, 32, 32),
    ("Mixed_3c", 128, 128, 192, 32, 96, 64),
    ("pool", (3, 3, 3), (2, 2, 2)),
    ("Mixed_4b", 192, 96, 208, 16, 48, 64),
    ("Mixed_4c", 160, 112, 224, 24, 64, 64),
    ("Mixed_4d", 128, 128, 256, 24, 64, 64),
    ("Mixed_4e", 112, 144, 288, 32, 64, 64),
    ("Mixed_4f", 256, 160, 320, 32, 128, 128),
    ("pool", (2, 2, 2), (2, 2, 2)),
    ("Mixed_5b", 256, 160, 320, 32, 128, 128),
    ("Mixed_5c", 384, 192, 384, 48, 128, 128),
]
_PREFIX = "RGB/inception_i3d/"


def _i3d_units():
    """(TF scope, in channels, out channels, kernel) of every conv + batch-norm unit."""
    units = [
        ("Conv3d_1a_7x7", 3, 64, 7),
        ("Conv3d_2b_1x1", 64, 64, 1),
        ("Conv3d_2c_3x3", 64, 192, 3),
    ]
    cin = 192
    for block in _INCEPTION:
        if block[0] == "pool":
            continue
        name, b0, b1a, b1b, b2a, b2b, b3 = block
        units += [
            (f"{name}/Branch_0/Conv3d_0a_1x1", cin, b0, 1),
            (f"{name}/Branch_1/Conv3d_0a_1x1", cin, b1a, 1),
            (f"{name}/Branch_1/Conv3d_0b_3x3", b1a, b1b, 3),
            (f"{name}/Branch_2/Conv3d_0a_1x1", cin, b2a, 1),
            (f"{name}/Branch_2/Conv3d_0b_3x3", b2a, b2b, 3),
            (f"{name}/Branch_3/Conv3d_0b_1x1", cin, b3, 1),
        ]
        cin = b0 + b1b + b2b + b3
    return units, cin


def _i3d_checkpoint(rng) -> dict:
    """Random He-scaled variables of the RGB I3D under their TensorFlow names."""
    units, cin = _i3d_units()
    ckpt = {}
    for scope, i, o, k in units:
        p = _PREFIX + scope
        ckpt[f"{p}/conv_3d/w"] = rng.normal(size=(k, k, k, i, o)) * np.sqrt(2.0 / (k**3 * i))
        ckpt[f"{p}/batch_norm/beta"] = 0.1 * rng.normal(size=o)
        ckpt[f"{p}/batch_norm/moving_mean"] = 0.1 * rng.normal(size=o)
        ckpt[f"{p}/batch_norm/moving_variance"] = rng.uniform(0.5, 1.5, size=o)
    ckpt[f"{_PREFIX}Logits/Conv3d_0c_1x1/conv_3d/w"] = rng.normal(
        size=(1, 1, 1, cin, 400)
    ) / np.sqrt(cin)
    ckpt[f"{_PREFIX}Logits/Conv3d_0c_1x1/conv_3d/b"] = 0.1 * rng.normal(size=400)
    return {k: v.astype(np.float32) for k, v in ckpt.items()}


def _tf_same(n, k, s):
    """TensorFlow 'SAME' padding (before, after) of a dimension of size n."""
    total = max((-(-n // s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def _pad_same(x, kernel, stride, fill):
    pads = [(0, 0)] + [_tf_same(n, k, s) for n, k, s in zip(x.shape[1:4], kernel, stride)]
    return np.pad(x, pads + [(0, 0)], constant_values=fill)


def _unit(ckpt, scope, x, stride=(1, 1, 1)):
    """Conv3d (TF 'SAME', no bias) -> batch norm (moving statistics, ε = 1e-3, no scale) -> ReLU
    on x [N, T, H, W, C]; the convolution as a sum over kernel offsets of strided slices @ w."""
    p = _PREFIX + scope
    w = ckpt[f"{p}/conv_3d/w"].astype(np.float64)  # [kt, kh, kw, in, out]
    out = [-(-n // s) for n, s in zip(x.shape[1:4], stride)]
    xp = _pad_same(x, w.shape[:3], stride, 0.0)
    y = 0.0
    for i, j, k in np.ndindex(*w.shape[:3]):
        sl = xp[
            :,
            i : i + stride[0] * out[0] : stride[0],
            j : j + stride[1] * out[1] : stride[1],
            k : k + stride[2] * out[2] : stride[2],
        ]
        y = y + sl @ w[i, j, k]
    mean, var = ckpt[f"{p}/batch_norm/moving_mean"], ckpt[f"{p}/batch_norm/moving_variance"]
    y = (y - mean) / np.sqrt(var.astype(np.float64) + 1e-3) + ckpt[f"{p}/batch_norm/beta"]
    return np.maximum(y, 0.0)


def _max_pool(x, kernel, stride):
    """TF 'SAME' max-pool (padding never wins: it is −inf)."""
    w = sliding_window_view(_pad_same(x, kernel, stride, -np.inf), kernel, axis=(1, 2, 3))
    return w[:, :: stride[0], :: stride[1], :: stride[2]].max(axis=(-3, -2, -1))


def _bilinear_matrix(n_in, n_out):
    """[n_out, n_in] half-pixel-centred linear interpolation, edges clamped (upsampling)."""
    src = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    i0 = np.floor(src).astype(int)
    frac = src - i0
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), np.clip(i0, 0, n_in - 1)), 1 - frac)
    np.add.at(m, (np.arange(n_out), np.clip(i0 + 1, 0, n_in - 1)), frac)
    return m


def _i3d_reference(ckpt, videos, size):
    """Kinetics logits [N, 400] of gray videos [N, T, h, w, 1] in [0, 1], resized to size²."""
    r_h, r_w = _bilinear_matrix(videos.shape[2], size), _bilinear_matrix(videos.shape[3], size)
    v = np.einsum("ah,bw,nthw->ntab", r_h, r_w, videos[..., 0].astype(np.float64))
    x = np.repeat(v[..., None], 3, axis=-1) * 2.0 - 1.0
    x = _unit(ckpt, "Conv3d_1a_7x7", x, (2, 2, 2))
    x = _max_pool(x, (1, 3, 3), (1, 2, 2))
    x = _unit(ckpt, "Conv3d_2c_3x3", _unit(ckpt, "Conv3d_2b_1x1", x))
    x = _max_pool(x, (1, 3, 3), (1, 2, 2))
    for block in _INCEPTION:
        if block[0] == "pool":
            x = _max_pool(x, block[1], block[2])
            continue
        n = block[0]
        x = np.concatenate(
            [
                _unit(ckpt, f"{n}/Branch_0/Conv3d_0a_1x1", x),
                _unit(
                    ckpt,
                    f"{n}/Branch_1/Conv3d_0b_3x3",
                    _unit(ckpt, f"{n}/Branch_1/Conv3d_0a_1x1", x),
                ),
                _unit(
                    ckpt,
                    f"{n}/Branch_2/Conv3d_0b_3x3",
                    _unit(ckpt, f"{n}/Branch_2/Conv3d_0a_1x1", x),
                ),
                _unit(ckpt, f"{n}/Branch_3/Conv3d_0b_1x1", _max_pool(x, (3, 3, 3), (1, 1, 1))),
            ],
            axis=-1,
        )
    # AvgPool (2, 7, 7) VALID, cropped to the map, 1×1×1 conv with bias, mean over space-time
    k = tuple(min(a, b) for a, b in zip((2, 7, 7), x.shape[1:4]))
    x = sliding_window_view(x, k, axis=(1, 2, 3)).mean(axis=(-3, -2, -1))
    w = ckpt[f"{_PREFIX}Logits/Conv3d_0c_1x1/conv_3d/w"].astype(np.float64)[0, 0, 0]
    logits = x @ w + ckpt[f"{_PREFIX}Logits/Conv3d_0c_1x1/conv_3d/b"]
    return logits.mean(axis=(1, 2, 3))


def _frechet_reference(e1, e2):
    """‖μ1 − μ2‖² + tr Σ1 + tr Σ2 − 2 tr (Σ1 Σ2)^{1/2} for N < D: the nonzero eigenvalues of
    Σ1 Σ2 = A'A B'B / k are those of (A B')(A B')' / k (A, B centred), so the last trace is
    the nuclear norm of A B' over √k, k = (N1 − 1)(N2 − 1)."""
    a, b = e1 - e1.mean(0), e2 - e2.mean(0)
    k = (len(a) - 1) * (len(b) - 1)
    cross = np.linalg.svd(a @ b.T, compute_uv=False).sum() / np.sqrt(k)
    mean = ((e1.mean(0) - e2.mean(0)) ** 2).sum()
    return mean + (a**2).sum() / (len(a) - 1) + (b**2).sum() / (len(b) - 1) - 2 * cross


def test_i3d_and_fvd_match_numpy_reference(tmp_path):
    """4 + 4 videos of 16 frames of 16² gray px, upsampled to 32²: the maps end at 2×1×1
    before the logits, so the temporal average pool is exercised; FVD in batches of 2 (the one
    compiled shape)."""
    rng = np.random.default_rng(0)
    ckpt = _i3d_checkpoint(rng)
    np.savez(tmp_path / "i3d.npz", **ckpt)
    variables = perceptual.load_i3d_variables(str(tmp_path / "i3d.npz"))
    assert sorted(perceptual.i3d_variables_to_tf(variables)) == sorted(ckpt)
    real = rng.uniform(size=(4, 16, 16, 16, 1)).astype(np.float32)
    fake = np.clip(real[::-1] + 0.5 * rng.normal(size=real.shape), 0, 1).astype(np.float32)
    ref_real, ref_fake = _i3d_reference(ckpt, real, 32), _i3d_reference(ckpt, fake, 32)
    emb = np.asarray(perceptual.i3d_embeddings(variables, jnp.asarray(real[:2]), 32))
    assert emb.shape == (2, 400)
    np.testing.assert_allclose(emb, ref_real[:2], rtol=1e-4, atol=1e-4 * np.abs(ref_real).max())
    ref = _frechet_reference(ref_real, ref_fake)
    assert ref > 0.1 * np.abs(ref_real).max() ** 2
    d = perceptual.fvd(variables, real, fake, resize_to=32, batch_size=2)
    assert d == pytest.approx(ref, rel=1e-4)
