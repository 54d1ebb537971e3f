"""Separation model: adjoint gradients vs finite differences, loss terms by hand, content swap."""

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest
from derivative_checks import jvp_matches_central_differences

from physics import separation as M
from physics.losses import LossWeights, separation_loss


def _f64(tree):
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float64), tree)


def _dynamics_loss(dyn):
    def loss(params, t0):
        traj = dyn.rollout(params, t0, 4)  # [B, 4, p]
        return jnp.sum(jnp.sin(traj) * jnp.arange(1.0, 5.0)[None, :, None])

    return loss


def test_dto_and_backsolve_gradients_agree_with_finite_differences():
    with jax.enable_x64(True):
        field = M.MLPVectorField(hidden=8, gain=0.5, activation="tanh")
        t0 = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3)))
        params = _f64(field.init(jax.random.PRNGKey(0), t0))
        grads = {}
        for adjoint in ("recursive", "backsolve"):
            dyn = M.TemporalDynamics(field, solver="dopri5", adjoint=adjoint, rtol=1e-9, atol=1e-11)
            grads[adjoint] = jax.jit(jax.grad(_dynamics_loss(dyn), argnums=(0, 1)))(params, t0)
        flat = [
            np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(g)])
            for g in grads.values()
        ]
        np.testing.assert_allclose(flat[0], flat[1], rtol=1e-6, atol=1e-9)

        # exact gradient of the fixed-step RK4 discretisation vs central differences
        dyn = M.TemporalDynamics(field, solver="rk4", dt=0.25)
        loss = jax.jit(_dynamics_loss(dyn))
        g_params, g_t0 = jax.grad(loss, argnums=(0, 1))(params, t0)
        eps = 1e-6
        for idx in [(0, 0), (1, 2)]:
            e = jnp.zeros_like(t0).at[idx].set(eps)
            fd = (loss(params, t0 + e) - loss(params, t0 - e)) / (2 * eps)
            np.testing.assert_allclose(g_t0[idx], fd, rtol=1e-7)
        # directional derivative along a random parameter direction
        flat, unravel = jax.flatten_util.ravel_pytree(params)
        v = jnp.asarray(np.random.default_rng(1).normal(size=flat.shape))
        fd = (loss(unravel(flat + eps * v), t0) - loss(unravel(flat - eps * v), t0)) / (2 * eps)
        np.testing.assert_allclose(jax.flatten_util.ravel_pytree(g_params)[0] @ v, fd, rtol=1e-6)


@pytest.mark.parametrize("solver", ["euler", "heun", "midpoint", "rk4"])
def test_fixed_step_ode_rollout_equals_diffeqsolve_and_runs_forward_mode(solver):
    """A fixed step dividing the frame spacing ("recursive") takes the scanned rollout: its
    trajectory equals diffeqsolve's (the "backsolve" path) to 1e-12 in float64, and jax.jvp
    through it agrees with central finite differences (jax.hessian through the same rollout:
    `tests/physics/test_aphynity.py`)."""
    with jax.enable_x64(True):
        field = M.MLPVectorField(hidden=8, gain=0.5, activation="tanh")
        t0 = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3)))
        params = _f64(field.init(jax.random.PRNGKey(0), t0))
        scanned = M.TemporalDynamics(field, solver=solver, dt=0.25)
        solved = M.TemporalDynamics(field, solver=solver, dt=0.25, adjoint="backsolve")
        a, b = (jax.jit(d.rollout, static_argnums=2)(params, t0, 5) for d in (scanned, solved))
        assert a.shape == (2, 5, 3) and float(jnp.max(jnp.abs(a[:, -1] - t0))) > 0.1
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-12)

        flat, unravel = jax.flatten_util.ravel_pytree(params)
        loss = _dynamics_loss(scanned)
        f = jax.jit(lambda p: loss(unravel(p), t0))
        rng = np.random.default_rng(1)
        directions = [jnp.asarray(rng.normal(size=flat.shape)) for _ in range(2)]
        jvp_matches_central_differences(f, flat, directions, h=1e-6, rtol=1e-7)
        if solver != "rk4":
            return
        # a step that does not divide the frame spacing keeps diffeqsolve
        odd = M.TemporalDynamics(field, solver="rk4", dt=0.3)
        assert jax.jit(odd.rollout, static_argnums=2)(params, t0, 5).shape == (2, 5, 3)


def test_residual_dynamics_is_reference_block_form():
    field = M.MLPVectorField(hidden=8)
    dyn = M.TemporalDynamics(field, kind="residual", n_blocks=3)
    t0 = jnp.ones((2, 4))
    p = dyn.init(jax.random.PRNGKey(1), t0)
    traj = dyn.rollout(p, t0, 3)
    t = t0
    for frame in range(1, 3):
        for blk in p:
            t = t + field.apply(blk, t)
        np.testing.assert_allclose(traj[:, frame], t, rtol=1e-5)
    np.testing.assert_array_equal(traj[:, 0], t0)


def _np_mlp(p, x):
    layers = sorted(p["params"], key=lambda n: int(n.split("_")[1]))
    for i, name in enumerate(layers):
        x = x @ np.asarray(p["params"][name]["kernel"]) + np.asarray(p["params"][name]["bias"])
        if i < len(layers) - 1:
            x = np.maximum(x, 0)
    return x


def _tiny(mixing="concat", use_content=True):
    return M.SeparationModel(
        content_encoder=M.MLPEncoder(3, hidden=5, num_layers=2),
        dynamic_encoder=M.MLPEncoder(3, hidden=5, num_layers=2),
        decoder=M.MLPDecoder((4,), hidden=6, num_layers=2),
        dynamics=M.TemporalDynamics(M.MLPVectorField(hidden=7), kind="residual", n_blocks=2),
        mixing=mixing,
        use_content=use_content,
    )


@pytest.mark.parametrize("mixing,use_content", [("concat", True), ("mul", True), ("concat", False)])
def test_each_loss_term_matches_hand_computation(mixing, use_content):
    model = _tiny(mixing, use_content)
    rng = np.random.default_rng(0)
    seq = rng.uniform(size=(3, 6, 4)).astype(np.float32)  # [B, L, P], τ = 2
    params = model.init(jax.random.PRNGKey(0), seq[:, :2])
    key = jax.random.PRNGKey(7)
    w = LossWeights(pred=2.0, ae=3.0, s=5.0, t=0.5)
    total, terms = jax.jit(lambda p, x, k: separation_loss(model, p, x, k, 2, w))(params, seq, key)

    enc_s = lambda win: _np_mlp(
        params["content_encoder"]["params"]["MLP_0"]  # noqa: E731
        and {"params": params["content_encoder"]["params"]["MLP_0"]},
        win.reshape(3, -1),
    )
    enc_t = lambda win: _np_mlp(
        {"params": params["dynamic_encoder"]["params"]["MLP_0"]},  # noqa: E731
        win.reshape(3, -1),
    )
    field = lambda blk, t: _np_mlp({"params": blk["params"]["MLP_0"]}, t)  # noqa: E731
    mix = (lambda s, t: np.concatenate([s, t], -1)) if mixing == "concat" else (lambda s, t: s * t)
    if not use_content:
        mix = lambda s, t: t  # noqa: E731
    dec = lambda z: _np_mlp({"params": params["decoder"]["params"]["MLP_0"]}, z)  # noqa: E731

    s, t = enc_s(seq[:, :2]), enc_t(seq[:, :2])
    l_t = np.mean(0.5 * (t**2).sum(-1))
    preds = []
    for _ in range(6):
        preds.append(dec(mix(s, t)))
        for blk in params["dynamics"]:
            t = t + field(blk, t)
    l_pred = np.mean((np.stack(preds, 1) - seq) ** 2)
    starts = np.asarray(jax.random.randint(key, (3,), 0, 5))
    win = np.stack([seq[b, i : i + 2] for b, i in enumerate(starts)])
    rec = dec(mix(s, enc_t(win)))
    l_ae = np.mean((rec - seq[np.arange(3), starts]) ** 2)
    l_s = np.mean((s - enc_s(seq[:, 4:])) ** 2) if use_content else 0.0
    np.testing.assert_allclose(terms["pred"], l_pred, rtol=1e-5)
    np.testing.assert_allclose(terms["ae"], l_ae, rtol=1e-5)
    np.testing.assert_allclose(terms["reg_s"], l_s, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(terms["reg_t"], l_t, rtol=1e-5)
    np.testing.assert_allclose(
        total, 2 * l_pred + 3 * l_ae + (5 * l_s if use_content else 0) + 0.5 * l_t, rtol=1e-5
    )


def test_content_swap_plumbing():
    model = _tiny("mul")
    rng = np.random.default_rng(1)
    a, b = (rng.uniform(size=(2, 2, 4)).astype(np.float32) for _ in range(2))
    params = model.init(jax.random.PRNGKey(0), a)
    swapped = model.swap(params, a, b, 5)
    s_a, _ = model.encode_content(params, a)
    expect = model.decode(
        params, s_a, None, model.rollout(params, model.encode_dynamic(params, b), 5)
    )
    np.testing.assert_allclose(swapped, expect, rtol=1e-6)
    np.testing.assert_allclose(model.swap(params, a, a, 5), model.predict(params, a, 5), rtol=1e-6)
    assert not np.allclose(swapped, model.predict(params, b, 5))
    no_s = _tiny(use_content=False)
    p2 = no_s.init(jax.random.PRNGKey(0), a)
    np.testing.assert_allclose(no_s.swap(p2, a, b, 5), no_s.predict(p2, b, 5), rtol=1e-6)


@pytest.mark.parametrize(
    "enc,dec,frame,kind,t_shape",
    [
        ("dcgan", "dcgan", (16, 16, 1), "mlp", (3,)),
        ("vgg", "vgg", (8, 8, 2), "mlp", (3,)),
        ("resnet", "dcgan", (8, 8, 3), "mlp", (3,)),
        ("conv_skip", "conv_skip", (8, 8, 1), "conv", (2, 2, 3)),
    ],
)
def test_architectures_shapes(enc, dec, frame, kind, t_shape):
    from physics.train import build_decoder, build_encoder  # registry used by the presets

    encs = [build_encoder(enc, 3, nf=4, channels=2) for _ in range(2)]
    decoder = build_decoder(dec, frame, nf=4, channels=2)
    field = M.MLPVectorField(hidden=8) if kind == "mlp" else M.ConvVectorField(hidden=4)
    model = M.SeparationModel(
        encs[0], encs[1], decoder, M.TemporalDynamics(field, solver="euler", dt=1.0)
    )
    window = jnp.ones((2, 2) + frame)
    params = jax.eval_shape(model.init, jax.random.PRNGKey(0), window)  # shapes only: no compile
    out = jax.eval_shape(lambda p, w: model.predict(p, w, 3), params, window)
    assert out.shape == (2, 3) + frame
    assert jax.eval_shape(model.encode_dynamic, params, window).shape == (2,) + t_shape


@pytest.mark.parametrize(
    "preset,params,blocks",
    # The reference's parameter counts, exactly (its DCGAN has biases only on the last
    # encoder and decoder layers, as ours).
    [("mmnist", 10_982_953, 1), ("waveeq", 60_842_864, 3), ("waveeq100", None, 3)],
)
def test_paper_presets_match_the_reference_sizes(preset, params, blocks):
    import importlib

    from physics.train import build_model

    config = importlib.import_module(f"physics.configs.{preset}").get_config()
    assert config.dynamics.n_blocks == blocks
    frame = (64, 64, 1) if preset != "waveeq100" else (100,)
    model = build_model(config, frame)
    window = jnp.zeros((2, config.cond_frames) + frame)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), window)
    n = M.num_params(shapes)
    if params is not None:
        assert n == params, n


def test_bad_options_raise_clear_errors():
    f = M.MLPVectorField()
    with pytest.raises(ValueError, match="unknown adjoint 'foo'.*backsolve"):
        M.TemporalDynamics(f, adjoint="foo")
    with pytest.raises(ValueError, match="unknown ODE solver"):
        M.TemporalDynamics(f, solver="rk45")
    with pytest.raises(ValueError, match="unknown mixing 'add'"):
        M.SeparationModel(None, None, None, M.TemporalDynamics(f), mixing="add")


def test_conv_skip_decoder_shares_the_skips_over_each_sequence():
    """SST's decoder reads one set of content skips per sequence for all its frames: equal to
    the skips repeated per frame (the concatenation), in float64."""
    with jax.enable_x64(True):
        enc = M.ConvSkipEncoder(out_channels=3, nf=4, num_down=2)
        dec = M.ConvSkipDecoder((16, 16, 1), nf=4, num_down=2)
        x = jax.random.normal(jax.random.PRNGKey(0), (2, 16, 16, 2), jnp.float64)
        s, skips = enc.apply(enc.init(jax.random.PRNGKey(1), x), x)
        n = 3  # frames per sequence
        z = jax.random.normal(jax.random.PRNGKey(2), (2 * n,) + s.shape[1:], jnp.float64)
        p = dec.init(jax.random.PRNGKey(3), z[:2], skips)
        shared = dec.apply(p, z, skips)
        repeated = dec.apply(p, z, [jnp.repeat(k, n, axis=0) for k in skips])
        assert shared.shape == (2 * n, 16, 16, 1)
        np.testing.assert_allclose(np.asarray(shared), np.asarray(repeated), atol=1e-12)


def test_forward_mode_through_the_separation_model():
    """jax.jvp and jax.hessian run through the convolutional separation model and its loss
    (DCGAN encoders and decoder with GroupNorm, a residual MLP flow) on CPU and agree with
    finite differences in float64."""
    from jax.flatten_util import ravel_pytree

    from physics.train import build_decoder, build_encoder

    model = M.SeparationModel(
        build_encoder("dcgan", 3, nf=4, channels=1),
        build_encoder("dcgan", 3, nf=4, channels=1),
        build_decoder("dcgan", (16, 16, 1), nf=4, channels=1),
        M.TemporalDynamics(M.MLPVectorField(hidden=6), kind="residual", n_blocks=1),
    )
    with jax.enable_x64(True):
        seq = jnp.asarray(np.random.default_rng(0).uniform(size=(2, 4, 16, 16, 1)))
        params = _f64(model.init(jax.random.PRNGKey(0), seq[:, :2]))
        flat, unravel = ravel_pytree(params)
        rng = np.random.default_rng(1)
        d1, d2 = (jnp.asarray(rng.normal(size=flat.shape)) * 0.1 for _ in range(2))
        key = jax.random.PRNGKey(3)
        f = jax.jit(lambda p: separation_loss(model, unravel(p), seq, key, 2)[0])
        h = 1e-4
        for d in (d1, d2):
            jvp = jax.jvp(f, (flat,), (d,))[1]
            fd = (f(flat + h * d) - f(flat - h * d)) / (2 * h)
            np.testing.assert_allclose(float(jvp), float(fd), rtol=1e-6, atol=1e-9)
        g = lambda a: f(flat + a[0] * d1 + a[1] * d2)  # noqa: E731
        hess = jax.hessian(g)(jnp.zeros(2))
        grad = jax.grad(g)
        fd = jnp.stack([(grad(h * e) - grad(-h * e)) / (2 * h) for e in jnp.eye(2)], 1)
        np.testing.assert_allclose(np.asarray(hess), np.asarray(fd), rtol=1e-5, atol=1e-8)
