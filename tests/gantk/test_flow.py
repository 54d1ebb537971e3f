"""The infinite-width IPM particle flow (the `make demo` experiment)."""

import csv
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gantk.flow import make_flow
from generative import metrics
from generative.core import config as config_lib
from generative.core import sharding
from generative.core.train import run


def _config(*overrides):
    return config_lib.resolve("gantk.configs", "demo", ["progress=false", *overrides])


def test_ipm_objective_is_t_times_ntk_mmd2_float64():
    with jax.enable_x64(True):
        cfg = _config("dtype=float64", "data.n_particles=60", "data.n_targets=40", "loss.t=2.5")
        flow = make_flow(cfg)
        x = flow.init(None).particles
        assert x.dtype == jnp.float64
        out = flow._evaluate(x, ())
        # Independent route: MMD² from the kernel matrices directly.
        k = flow.kernel
        y = flow.targets
        mmd2 = jnp.mean(k(x, x)) + jnp.mean(k(y, y)) - 2 * jnp.mean(k(x, y))
        # The logged columns (one compiled evaluation): L(f_t) = t·MMD² exactly.
        assert abs(float(out["disc_objective"]) - 2.5 * float(out["ntk_mmd2"])) < 1e-10
        # Against the eager computation (XLA fuses transcendental functions differently).
        assert abs(float(out["ntk_mmd2"]) - float(mmd2)) < 1e-9


def test_particle_gradient_matches_finite_differences():
    with jax.enable_x64(True):
        cfg = _config("dtype=float64", "data.n_particles=20", "data.n_targets=20")
        flow = make_flow(cfg)
        fixed = flow.init(None).particles
        u = flow.coefficients(fixed)
        # Evaluate off the training points: the ReLU NTK has a cusp at z = x_i (angle 0).
        x = fixed + 0.1 * jax.random.normal(jax.random.PRNGKey(3), fixed.shape)
        loss = lambda z: flow.generator_loss(z, fixed, u)
        grad = np.asarray(jax.grad(loss)(x))
        h = 1e-6
        for i, j in [(0, 0), (3, 1), (19, 0)]:
            e = jnp.zeros_like(x).at[i, j].set(h)
            fd = (loss(x + e) - loss(x - e)) / (2 * h)
            np.testing.assert_allclose(grad[i, j], float(fd), rtol=1e-6, atol=1e-12)


def test_blocked_discriminator_equals_dense():
    with jax.enable_x64(True):
        cfg = _config("dtype=float64", "data.n_particles=50", "data.n_targets=30")
        flow = make_flow(cfg)
        x = flow.init(None).particles
        u = flow.coefficients(x)
        dense = flow.discriminator(x, x, u)
        flow.block = 16  # 80 columns in 5 blocks (with padding)
        blocked = flow.discriminator(x, x, u)
        np.testing.assert_allclose(blocked, dense, rtol=1e-8)
        g1 = jax.grad(lambda z: flow.generator_loss(z, x, u))(x)
        # the IPM step: blocked scan (n > block) = one fused dense pass (n <= block)
        blocked_step = flow.particle_loss_and_grad(x, (), None)
        flow.block = 1024
        g2 = jax.grad(lambda z: flow.generator_loss(z, x, u))(x)
        np.testing.assert_allclose(g1, g2, rtol=1e-7)
        dense_step = flow.particle_loss_and_grad(x, (), None)
        np.testing.assert_allclose(blocked_step[0], dense_step[0], rtol=1e-8)
        np.testing.assert_allclose(blocked_step[1], dense_step[1], rtol=1e-6, atol=1e-10)


def test_demo_sinkhorn_falls_tenfold(tmp_path):
    cfg = _config("num_steps=100", "eval.figures=true", "eval.max_frames=3", "eval.grid_size=16")
    flow = make_flow(cfg)
    run(flow.experiment(tmp_path), cfg, tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    for col in ("step", "sinkhorn", "energy", "ntk_mmd2", "disc_objective", "gen_loss"):
        assert col in rows[0]
    first, last = float(rows[0]["sinkhorn"]), float(rows[-1]["sinkhorn"])
    assert int(rows[0]["step"]) == 0 and int(rows[-1]["step"]) == 100
    assert last < first / 10, (first, last)
    assert float(rows[-1]["energy"]) < float(rows[0]["energy"]) / 10
    assert (tmp_path / "final.png").stat().st_size > 0
    assert (tmp_path / "flow.gif").stat().st_size > 0
    assert list((tmp_path / "checkpoints").iterdir())


def test_sharded_particles_follow_the_same_trajectory(tmp_path):
    # float64: the flow (step η/N = 15 x the gradient here) amplifies float32 round-off.
    with jax.enable_x64(True):
        cfg = _config(
            "dtype=float64", "num_steps=20", "eval.figures=false", "data.n_particles=64",
            "data.n_targets=48",
        )  # fmt: skip
        one_mesh = sharding.data_mesh(jax.devices()[:1])
        one = run(make_flow(cfg).experiment(), cfg, tmp_path / "one", mesh=one_mesh)
        four = run(make_flow(cfg).experiment(), cfg, tmp_path / "four", mesh=sharding.data_mesh())
        assert len(four.particles.sharding.device_set) == 4
        np.testing.assert_allclose(
            np.asarray(one.particles), np.asarray(four.particles), rtol=1e-8, atol=1e-8
        )


@pytest.mark.parametrize(
    "overrides",
    [
        ("loss.name=lsgan",),  # dense loss: fused k(x, X) pass + Lanczos
        ("loss.name=vanilla", "generator.kind=mlp"),  # diffrax solve, neural generator
    ],
    ids=["lsgan-particles", "vanilla-generator"],
)
def test_sharded_dense_losses_and_generator_equal_unsharded(tmp_path, overrides):
    with jax.enable_x64(True):
        cfg = _config(
            "dtype=float64", "num_steps=8", "eval.figures=false", "data.n_particles=64",
            "data.n_targets=48", "log_every=4", *overrides,
        )  # fmt: skip
        one_mesh = sharding.data_mesh(jax.devices()[:1])
        one = run(make_flow(cfg).experiment(), cfg, tmp_path / "one", mesh=one_mesh)
        four = run(make_flow(cfg).experiment(), cfg, tmp_path / "four", mesh=sharding.data_mesh())
        moved = np.abs(np.asarray(one.particles) - np.asarray(make_flow(cfg).init(None).particles))
        if "generator.kind=mlp" not in overrides:
            assert moved.max() > 1e-6  # the flow did move the particles
        np.testing.assert_allclose(
            np.asarray(one.particles), np.asarray(four.particles), rtol=1e-8, atol=1e-8
        )
        if "generator.kind=mlp" in overrides:
            for a, b in zip(jax.tree.leaves(one.generator), jax.tree.leaves(four.generator)):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-8, atol=1e-8)


def test_sinkhorn_matches_exact_ot():
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (200, 2))
    y = 3 + jax.random.normal(jax.random.fold_in(key, 1), (200, 2))
    exact = metrics.exact_ot_cost(x, y)
    assert abs(float(metrics.sinkhorn_divergence(x, y, 0.1)) - exact) / exact < 2e-3


def _cli(workdir, *extra):
    args = [
        sys.executable, "-c", "from gantk.main import main; raise SystemExit(main())",
        "flow", "--config", "demo", "--workdir", str(workdir), "progress=false",
        "eval.figures=false", "data.n_particles=64", "data.n_targets=64",
        "num_steps=600", "log_every=20", "checkpoint_every=20", *extra,
    ]  # fmt: skip
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_kill_minus_nine_then_resume_is_bit_identical(tmp_path):
    full = _cli(tmp_path / "full")
    victim = _cli(tmp_path / "killed")
    ckpts = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 120
    while time.time() < deadline:
        steps = [p for p in ckpts.glob("*") if p.name.isdigit()] if ckpts.exists() else []
        if len(steps) >= 2:
            break
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert full.wait() == 0, full.stderr.read().decode()[-2000:]
    resumed = _cli(tmp_path / "killed")
    out, err = resumed.communicate()
    assert resumed.returncode == 0, err.decode()[-2000:]
    assert b"resumed from" in out
    a = np.load(tmp_path / "full" / "trajectory" / "00000600.npy")
    b = np.load(tmp_path / "killed" / "trajectory" / "00000600.npy")
    np.testing.assert_array_equal(a, b)
    rows_a = list(csv.DictReader(open(tmp_path / "full" / "metrics.csv")))
    rows_b = list(csv.DictReader(open(tmp_path / "killed" / "metrics.csv")))
    assert [r["step"] for r in rows_a] == [r["step"] for r in rows_b]
    assert [r["sinkhorn"] for r in rows_a] == [r["sinkhorn"] for r in rows_b]


def test_self_rows_use_the_symmetric_subgradient():
    """For a kernel smooth on the diagonal (erf NTK), ∂₁k(x, x) = ½∇k(x, x): same gradient."""
    from gantk.kernels import kernel_matvec, make_kernel

    with jax.enable_x64(True):
        cfg = _config("kernel.architecture=erf")
        k = make_kernel(cfg.kernel)
        x = jax.random.normal(jax.random.PRNGKey(0), (12, 2), jnp.float64)
        X = jnp.concatenate([x, 2.0 + x[:5]])
        u = jax.random.normal(jax.random.PRNGKey(1), (17,), jnp.float64)
        for block in (4, 1024):
            plain = lambda z, b=block: jnp.sum(jnp.sin(kernel_matvec(k, z, X, u, b)))
            sym = lambda z, b=block: jnp.sum(jnp.sin(kernel_matvec(k, z, X, u, b, self_rows=True)))
            np.testing.assert_allclose(plain(x), sym(x), rtol=1e-12)
            np.testing.assert_allclose(jax.grad(plain)(x), jax.grad(sym)(x), rtol=1e-8, atol=1e-10)
