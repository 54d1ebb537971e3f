import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from video import srvp as M

TINY = M.SRVPConfig(
    nc=1,
    nf=4,
    nhx=8,
    ny=3,
    nz=2,
    nw=6,
    nt_inf=2,
    nh_inf=8,
    nlayers_inf=3,
    nh_res=8,
    nlayers_res=3,
    n_euler_steps=2,
    obs_scale=0.5,
    beta_y=0.7,
    beta_z=1.3,
    l2_res=0.9,
    res_gain=1.41,
)


def random_variables(cfg, seed=0):
    """Variables filled from abstract shapes (no init compile): kernels ~ N(0, 0.3²)."""
    shapes = jax.eval_shape(lambda k: M.init_variables(cfg, k), jax.random.PRNGKey(0))
    rng = np.random.default_rng(seed)

    def fill(path, s):
        k = jax.tree_util.keystr(path)
        if "var" in k:
            return jnp.ones(s.shape)
        if "mean" in k:
            return jnp.zeros(s.shape)
        return jnp.asarray(0.3 * rng.normal(size=s.shape), jnp.float32)

    return jax.tree_util.tree_map_with_path(fill, shapes)


@pytest.fixture(scope="module")
def tiny_init():
    return jax.jit(lambda k: M.init_variables(TINY, k))(jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def video():
    return jax.random.uniform(jax.random.PRNGKey(1), (2, 4, 64, 64, 1))


def test_initialisation(tiny_init):
    p = tiny_init["params"]
    for i in range(TINY.nlayers_res):
        w = np.asarray(p["f"][f"dense{i}"]["kernel"])  # orthogonal with gain
        gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        np.testing.assert_allclose(gram, TINY.res_gain**2 * np.eye(len(gram)), atol=1e-4)
        assert np.all(np.asarray(p["f"][f"dense{i}"]["bias"]) == 0)
    convs = [
        np.asarray(v)
        for k, v in jax.tree_util.tree_flatten_with_path(p["encoder"])[0]
        if "kernel" in jax.tree_util.keystr(k)
    ]
    allw = np.concatenate([c.ravel() for c in convs])
    assert abs(allw.std() - 0.02) < 0.003 and abs(allw.mean()) < 0.003
    scales = np.concatenate(
        [
            np.asarray(v).ravel()
            for k, v in jax.tree_util.tree_flatten_with_path(p["encoder"])[0]
            if "scale" in jax.tree_util.keystr(k)
        ]
    )
    assert abs(scales.mean() - 1) < 0.01 and 0.01 < scales.std() < 0.03
    assert set(tiny_init["batch_stats"]) == {"encoder", "decoder"}


def test_paper_model_size():
    shapes = jax.eval_shape(lambda k: M.init_variables(M.SRVPConfig(), k), jax.random.PRNGKey(0))
    n = sum(x.size for x in jax.tree.leaves(shapes["params"]))
    assert n == 10_677_261  # the PyTorch reference reports 10.68M parameters


def test_gaussian_kl_vs_monte_carlo():
    mu_q, s_q, mu_p, s_p = 0.3, 0.7, -0.4, 1.6
    x = mu_q + s_q * np.random.default_rng(0).normal(size=400_000)
    log_q = -0.5 * ((x - mu_q) / s_q) ** 2 - np.log(s_q)
    log_p = -0.5 * ((x - mu_p) / s_p) ** 2 - np.log(s_p)
    mc = np.mean(log_q - log_p)
    assert float(M.gaussian_kl(mu_q, s_q, mu_p, s_p)) == pytest.approx(mc, abs=3e-3)
    assert float(M.gaussian_kl(mu_q, s_q, mu_q, s_q)) == pytest.approx(0.0, abs=1e-7)


def test_elbo_terms_by_hand(tiny_init, video):
    cfg, v, x = TINY, tiny_init, video
    noise = M.sample_noise(cfg, jax.random.PRNGKey(2), 2, 4)
    terms, new_stats = jax.jit(lambda v, x, n: M.elbo(cfg, v, x, n, train=True))(v, x, noise)
    model = M.SRVP(cfg)
    call = lambda method, *a, **kw: model.apply(
        v, *a, method=method, mutable=["batch_stats"], **kw
    )[0]
    h, skips = call(M.SRVP.encode, x, train=True)
    mu_y, s_y = call(M.SRVP.infer_y1, h[:, :2])
    y = mu_y + s_y * noise.eps_y
    w = call(M.SRVP.content, jnp.stack([h[b, noise.content_idx[b]] for b in range(2)]))
    mu_q, s_q = call(M.SRVP.infer_z, h)
    f = lambda yy, zz: model.apply(v, jnp.concatenate([yy, zz], -1), method=lambda m, a: m.f(a))
    ys, kl_z, res = [y], 0.0, 0.0
    for t in range(1, 4):
        z = mu_q[:, t] + s_q[:, t] * noise.eps_z[:, t - 1]
        mu_p, s_p = call(M.SRVP.prior_z, y)
        kl_z += np.sum(
            np.log(s_p / s_q[:, t])
            + (s_q[:, t] ** 2 + (mu_q[:, t] - mu_p) ** 2) / (2 * s_p**2)
            - 0.5
        )
        for _ in range(2):  # two Euler steps, same z
            inc = 0.5 * f(y, z)
            res += np.sum(np.sqrt(np.sum(np.asarray(inc) ** 2, -1)))
            y = y + inc
        ys.append(y)
    ys = jnp.stack(ys, 1)
    x_hat = call(M.SRVP.decode, ys, w, [], train=True)
    nu = cfg.obs_scale
    nll = np.sum(0.5 * ((x - x_hat) / nu) ** 2 + np.log(nu) + 0.5 * np.log(2 * np.pi)) / 2
    kl_y = np.sum(-np.log(s_y) + (s_y**2 + mu_y**2) / 2 - 0.5) / 2
    kl_z, res = kl_z / 2, res / 2
    np.testing.assert_allclose(np.asarray(terms.y), np.asarray(ys), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(float(terms.nll), nll, rtol=1e-5)
    np.testing.assert_allclose(float(terms.kl_y), kl_y, rtol=1e-5)
    # KL of nearly equal Gaussians: float32 cancellation, so an absolute floor too
    np.testing.assert_allclose(float(terms.kl_z), kl_z, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(float(terms.residual_norm), res, rtol=1e-4)
    total = nll + 0.7 * kl_y + 1.3 * kl_z + 0.9 * res
    np.testing.assert_allclose(float(terms.loss), total, rtol=1e-5)
    # training mode updates the running statistics; eval mode does not
    changed = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), new_stats, v["batch_stats"])
    assert max(jax.tree.leaves(changed)) > 0
    _, same = M.elbo(cfg, v, x, noise, train=False)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), same, v["batch_stats"]))


def test_single_euler_step_is_plain_residual_update():
    cfg = dataclasses.replace(TINY, n_euler_steps=1)
    v = random_variables(cfg)
    y, z = jnp.ones((2, 3)) * 0.2, jnp.ones((2, 2)) * -0.1
    model = M.SRVP(cfg)
    new, inc = model.apply(v, y, z, 1.0, method=M.SRVP.dynamics)
    f = model.apply(v, jnp.concatenate([y, z], -1), method=lambda m, a: m.f(a))
    np.testing.assert_allclose(np.asarray(new), np.asarray(y + f), rtol=1e-6)
    # rollout: one z per frame, y_{t+1} = y_t + f(y_t, z_{t+1})
    eps = jax.random.normal(jax.random.PRNGKey(0), (3, 2, 2))
    ys = M.rollout_prior(cfg, v, y, None, 3, z_noise=eps)
    yy = y
    for t in range(3):
        mu, s = model.apply(v, yy, method=M.SRVP.prior_z)
        yy = yy + model.apply(
            v, jnp.concatenate([yy, mu + s * eps[t]], -1), method=lambda m, a: m.f(a)
        )
        np.testing.assert_allclose(np.asarray(ys[:, t]), np.asarray(yy), rtol=1e-5, atol=1e-6)


def test_euler_substeps_hold_z_and_frame_rate():
    cfg = TINY  # 2 Euler steps per frame
    v = random_variables(cfg)
    model = M.SRVP(cfg)
    y0 = jnp.full((2, 3), 0.1)
    eps = jax.random.normal(jax.random.PRNGKey(0), (4, 2, 2))
    ys = M.rollout_prior(cfg, v, y0, None, 4, z_noise=eps)
    fine = M.rollout_prior(cfg, v, y0, None, 4, dt=0.5, frame_rate=2, z_noise=eps)
    finer = M.rollout_prior(cfg, v, y0, None, 4, dt=0.25, frame_rate=2, z_noise=eps)
    assert ys.shape == (2, 4, 3) and fine.shape == (2, 8, 3) and finer.shape == (2, 8, 3)
    np.testing.assert_allclose(np.asarray(fine[:, 1::2]), np.asarray(ys), rtol=1e-5)
    # by hand: z drawn once from p(z | y_t) then held for both half steps
    y = y0
    mu, s = model.apply(v, y, method=M.SRVP.prior_z)
    z = mu + s * eps[0]
    f = lambda yy: model.apply(v, jnp.concatenate([yy, z], -1), method=lambda m, a: m.f(a))
    half = y + 0.5 * f(y)
    np.testing.assert_allclose(np.asarray(fine[:, 0]), np.asarray(half), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(fine[:, 1]), np.asarray(half + 0.5 * f(half)), rtol=1e-5)
    assert not np.allclose(np.asarray(finer), np.asarray(fine))  # smaller dt, other path
    with pytest.raises(ValueError, match="dt=0.3"):
        M.rollout_prior(cfg, v, y0, None, 2, dt=0.3, z_noise=eps[:2])


@pytest.mark.parametrize("horizon", [1, 6])
def test_generate_shapes_any_horizon(horizon, video):
    cfg = dataclasses.replace(TINY, skipco=True)
    v = random_variables(cfg)
    gen = jax.jit(lambda v, x, k: M.generate(cfg, v, x, k, horizon))
    out = gen(v, video[:, :3], jax.random.PRNGKey(0))
    assert out.shape == (2, 3 + horizon, 64, 64, 1)
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    np.testing.assert_array_equal(
        np.asarray(out), np.asarray(gen(v, video[:, :3], jax.random.PRNGKey(0)))
    )
    # evaluation's form: shared encodings, predicted frames only -> the same frames
    enc = M.encode_frames(cfg, v, video[:, :3])
    pred = M.generate(
        cfg,
        v,
        video[:, :3],
        jax.random.PRNGKey(0),
        horizon,
        encodings=enc,
        with_conditioning=False,
    )
    np.testing.assert_allclose(np.asarray(pred), np.asarray(out[:, 3:]), atol=1e-5)


@pytest.mark.parametrize(
    "change",
    [
        dict(dynamics="gru", n_euler_steps=1),
        dict(dynamics="mlp", n_euler_steps=1),
        dict(stochastic=False),
        dict(archi="vgg", skipco=True, nc=3),
    ],
)
def test_ablations_and_architectures(change, video):
    cfg = dataclasses.replace(TINY, **change)
    v = random_variables(cfg)
    x = jnp.broadcast_to(video, video.shape[:-1] + (cfg.nc,))
    noise = M.sample_noise(cfg, jax.random.PRNGKey(2), 2, 4)
    terms, _ = jax.jit(lambda v, x, n: M.elbo(cfg, v, x, n))(v, x, noise)
    assert terms.x_hat.shape == x.shape
    # the likelihood term from the reconstructions, in numpy: Σ −log N(x | x̂, ν²) per video
    xs, xh, nu = np.asarray(x, np.float64), np.asarray(terms.x_hat, np.float64), cfg.obs_scale
    nll = (0.5 * ((xs - xh) / nu) ** 2 + np.log(nu) + 0.5 * np.log(2 * np.pi)).sum() / 2
    np.testing.assert_allclose(float(terms.nll), nll, rtol=1e-4)
    parts = nll + cfg.beta_y * float(terms.kl_y) + cfg.beta_z * float(terms.kl_z)
    parts += cfg.l2_res * float(terms.residual_norm)
    np.testing.assert_allclose(float(terms.loss), parts, rtol=1e-4)
    if not cfg.stochastic:
        assert float(terms.kl_z) == 0.0 and "p_z" not in v["params"]
    if cfg.dynamics != "residual":
        assert float(terms.residual_norm) == 0.0
    if cfg.dynamics == "mlp":  # non-residual: y_{t+1} = f(y_t, z_{t+1})
        y, z = jnp.ones((1, 3)), jnp.ones((1, 2))
        new, _ = M.SRVP(cfg).apply(v, y, z, 1.0, method=M.SRVP.dynamics)
        f = M.SRVP(cfg).apply(v, jnp.concatenate([y, z], -1), method=lambda m, a: m.f(a))
        np.testing.assert_allclose(np.asarray(new), np.asarray(f))


def test_bad_config_raises():
    with pytest.raises(ValueError, match="valid choices: dcgan, vgg"):
        M.SRVPConfig(archi="resnet")
    with pytest.raises(ValueError, match="valid choices: residual, mlp, gru"):
        M.SRVPConfig(dynamics="lstm")
    with pytest.raises(ValueError, match="needs dynamics='residual'"):
        M.SRVPConfig(dynamics="gru", n_euler_steps=2)


def test_residual_norm_gradient_is_finite_at_zero(tiny_init, video):
    """‖dt·f‖₂ with f ≡ 0 (last dynamics layer zeroed, as when all its ReLU inputs are off):
    the plain sqrt(Σ v²) has a NaN gradient there; the ELBO's gradient stays finite."""
    v = jnp.asarray([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(M.l2_norm(v), [5.0, 0.0])
    g = jax.jacobian(lambda a: M.l2_norm(a).sum())(v)
    np.testing.assert_allclose(g, [[0.6, 0.8], [0.0, 0.0]])
    f = tiny_init["params"]["f"]
    last = sorted(f)[-1]
    params = {
        **tiny_init["params"],
        "f": {**f, last: jax.tree.map(jnp.zeros_like, f[last])},
    }
    variables = {**tiny_init, "params": params}
    noise = M.sample_noise(TINY, jax.random.PRNGKey(2), 2, 4)
    loss = lambda p: M.elbo(TINY, {**variables, "params": p}, video, noise)[0].loss
    grads = jax.jit(jax.grad(loss))(params)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(grads))


def test_auto_sample_chunk_divides_the_samples_within_the_frame_budget():
    from video.evaluation import AUTO_CHUNK_FRAMES, auto_sample_chunk

    for n, videos, horizon in [(100, 2, 20), (100, 1, 20), (7, 1, 5), (100, 16, 20), (1, 3, 10)]:
        c = auto_sample_chunk(n, videos, horizon)
        assert n % c == 0 and 1 <= c <= n
        assert c == 1 or c * videos * horizon <= AUTO_CHUNK_FRAMES
        bigger = [d for d in range(c + 1, n + 1) if n % d == 0]
        assert not bigger or bigger[0] * videos * horizon > AUTO_CHUNK_FRAMES
    assert auto_sample_chunk(100, 2, 20) == 4
    # off CPU: no budget, every sample in one vectorised program
    assert auto_sample_chunk(100, 2, 20, platform="gpu") == 100
    assert auto_sample_chunk(7, 3, 10, platform="tpu") == 7


@pytest.mark.parametrize("archi", ["dcgan", "vgg"])
def test_skips_shared_per_video_equal_skips_repeated_per_frame(archi, video):
    """The decoder reads each video's skips once for its T frames (their part of each layer
    computed per video): the same frames, and the same gradients, as skips repeated per frame
    (every row its own group), the plain concatenation of the paper."""
    cfg = dataclasses.replace(TINY, archi=archi, skipco=True)
    v = random_variables(cfg)
    h, skips = M.encode_frames(cfg, v, video[:, :3])
    skips = [s[:, -1] for s in skips]  # [B, h, w, c]
    b, t = 2, 4
    y = jax.random.normal(jax.random.PRNGKey(3), (b, t, cfg.ny))
    w = jax.random.normal(jax.random.PRNGKey(4), (b, cfg.nw))
    vin = jnp.concatenate([jnp.broadcast_to(w[:, None], (b, t, cfg.nw)), y], -1).reshape(b * t, -1)
    dec = M.frame_decoder(cfg)
    dv = {k: v[k]["decoder"] for k in v}

    def frames(dv, skips, per_frame):
        if per_frame:
            skips = [jnp.repeat(s, t, axis=0) for s in skips]
        return dec.apply(dv, vin, skips, False)

    shared, repeated = frames(dv, skips, False), frames(dv, skips, True)
    assert shared.shape == (b * t, 64, 64, cfg.nc)
    np.testing.assert_allclose(np.asarray(shared), np.asarray(repeated), atol=2e-6)
    loss = lambda dv, s, per_frame: jnp.sum(jnp.sin(frames(dv, s, per_frame)))
    ga = jax.grad(loss, argnums=(0, 1))(dv, skips, False)
    gb = jax.grad(loss, argnums=(0, 1))(dv, skips, True)
    for a, c in zip(jax.tree.leaves(ga), jax.tree.leaves(gb)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(c), rtol=1e-4, atol=1e-5)


def test_forward_mode_through_the_elbo(video):
    """jax.jvp and jax.hessian run through the SRVP ELBO (encoder, posterior, latent ODE,
    decoder; the layers' CPU forms have custom JVPs, no custom VJP). In float64, along two
    unit directions in parameter space: the JVP equals central differences of the loss, the
    Hessian (forward over reverse) equals forward over forward and is symmetric. (Central
    differences of the gradient are no reference here: LeakyReLU's kinks make it jump.)"""
    from jax.flatten_util import ravel_pytree

    cfg = TINY
    with jax.enable_x64(True):
        v = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), random_variables(cfg))
        x = jnp.asarray(video[:, :3], jnp.float64)
        flat, unravel = ravel_pytree(v["params"])
        rng = np.random.default_rng(0)
        d1, d2 = (jnp.asarray(rng.normal(size=flat.shape)) for _ in range(2))
        d1, d2 = d1 / jnp.linalg.norm(d1), d2 / jnp.linalg.norm(d2)
        noise = M.sample_noise(cfg, jax.random.PRNGKey(2), 2, 3)

        def g(a):
            p = unravel(flat + a[0] * d1 + a[1] * d2)
            return M.elbo(cfg, {**v, "params": p}, x, noise, train=True)[0].loss

        g0, h = jax.jit(g), 1e-5
        jvp = jax.jit(lambda e: jax.jvp(g, (jnp.zeros(2),), (e,))[1])  # one compile
        for e in jnp.eye(2):
            fd = (g0(h * e) - g0(-h * e)) / (2 * h)
            np.testing.assert_allclose(float(jvp(e)), float(fd), rtol=1e-6)
        fwd_rev = jax.jit(jax.hessian(g))(jnp.zeros(2))
        fwd_fwd = jax.jit(jax.jacfwd(jax.jacfwd(g)))(jnp.zeros(2))
        np.testing.assert_allclose(np.asarray(fwd_rev), np.asarray(fwd_fwd), rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(np.asarray(fwd_rev), np.asarray(fwd_rev).T, rtol=1e-8)
        assert np.abs(np.asarray(fwd_rev)).max() > 1e-3  # curvature along the directions
