"""Dual-coefficient solvers against exact answers, and the generator-loss theorem."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from gantk import dynamics
from gantk.flow import make_flow
from gantk.kernels import default_kernel_config, make_kernel
from generative.core import config as config_lib
from generative.data.toy import eight_gaussians

N, M = 40, 30


@pytest.fixture(scope="module")
def gram():
    with jax.enable_x64(True):
        k = make_kernel(default_kernel_config())
        x = jax.random.normal(jax.random.PRNGKey(0), (N, 2), jnp.float64)
        y = eight_gaussians(jax.random.PRNGKey(1), M).astype(jnp.float64)
        X = jnp.concatenate([x, y])
        yield np.asarray(k(X, X))


def test_lsgan_routes_agree_with_matrix_exponential(gram):
    with jax.enable_x64(True):
        K = jnp.asarray(gram)
        t = 0.7
        W = np.diag(np.r_[np.full(N, 1 / N), np.full(M, 1 / M)])
        labels = np.r_[-np.ones(N), np.ones(M)]
        f_exact = (np.eye(N + M) - scipy.linalg.expm(-2 * t * gram @ W)) @ labels
        us = {
            m: np.asarray(
                dynamics.dual_coefficients("lsgan", K, N, M, t, method=m, rtol=1e-10, atol=1e-12)
            )
            for m in ("eigen", "lanczos", "ode", "closed_form")
        }
        for m, u in us.items():
            np.testing.assert_allclose(gram @ u, f_exact, rtol=1e-6, atol=1e-9, err_msg=m)
        for m in ("lanczos", "ode"):
            np.testing.assert_allclose(us[m], us["eigen"], rtol=1e-6, atol=1e-9, err_msg=m)


def test_lanczos_float32_meets_1e5_relative(gram):
    K32 = jnp.asarray(gram, jnp.float32)
    with jax.enable_x64(True):
        ref = np.asarray(dynamics.lsgan_eigen(jnp.asarray(gram), N, M, 1.0))
    u = np.asarray(dynamics.lsgan_lanczos(K32, N, M, 1.0, num_iters=48))
    assert np.abs(u - ref).max() / np.abs(ref).max() < 1e-5


def test_ipm_closed_form_solves_the_dual_ode(gram):
    with jax.enable_x64(True):
        K = jnp.asarray(gram)
        u_ode = dynamics.dual_coefficients("ipm", K, N, M, 2.0, method="ode", rtol=1e-10)
        np.testing.assert_allclose(
            u_ode, dynamics.ipm_coefficients(2.0, N, M, jnp.float64), rtol=1e-8
        )


@pytest.mark.parametrize("loss, final_tol", [("vanilla", 1e-6), ("hinge", 5e-3)])
def test_ode_converges_to_fine_fixed_step(gram, loss, final_tol):
    with jax.enable_x64(True):
        K = jnp.asarray(gram)
        fine = np.asarray(
            dynamics.dual_coefficients(loss, K, N, M, 1.0, method="fixed_step", fixed_steps=8000)
        )
        errors = []
        for tol in (1e-3, 1e-5, 1e-7):
            u = dynamics.dual_coefficients(
                loss, K, N, M, 1.0, method="ode", rtol=tol, atol=tol * 1e-2
            )
            errors.append(np.abs(np.asarray(u) - fine).max() / np.abs(fine).max())
        assert errors[0] > errors[-1], errors
        assert errors[-1] < final_tol, errors


def test_unknown_method_and_loss():
    K = jnp.eye(3)
    with pytest.raises(ValueError, match="valid: auto, closed_form, eigen"):
        dynamics.dual_coefficients("lsgan", K, 1, 2, 1.0, method="magic")
    with pytest.raises(ValueError, match="valid: ipm, lsgan, vanilla, hinge"):
        dynamics.dual_coefficients("wgan", K, 1, 2, 1.0)
    with pytest.raises(ValueError, match="LSGAN loss only"):
        dynamics.dual_coefficients("vanilla", K, 1, 2, 1.0, method="eigen")


@pytest.mark.parametrize("loss", ["ipm", "lsgan", "vanilla"])
def test_generator_loss_non_increasing_along_small_step_flow(loss):
    """C(x_k) = mean c(f_t^(k)(x_k)), the discriminator retrained at every step."""
    with jax.enable_x64(True):
        cfg = config_lib.resolve(
            "gantk.configs",
            "demo",
            ["dtype=float64", f"loss.name={loss}", "eta=2.0", "data.n_particles=24",
             "data.n_targets=24", "loss.rtol=1e-9", "loss.atol=1e-11"],
        )  # fmt: skip
        flow = make_flow(cfg)
        state = flow.init(None)
        step = jax.jit(flow.step)
        gen = jax.jit(lambda x: flow.generator_loss(x, x, flow.coefficients(x), True))
        values = [float(gen(state.particles))]
        for _ in range(8):
            state, _ = step(state, None, None)
            values.append(float(gen(state.particles)))
        assert all(b <= a + 1e-12 for a, b in zip(values, values[1:])), values
        assert values[-1] < values[0]


@pytest.mark.parametrize("loss", ["ipm", "lsgan", "hinge"])
def test_one_pass_particle_gradient_equals_autodiff(loss):
    """The step's fused kernel pass (rows of K + VJP) = autodiff through f_t with u fixed."""
    with jax.enable_x64(True):
        cfg = config_lib.resolve(
            "gantk.configs",
            "demo",
            ["dtype=float64", f"loss.name={loss}", "data.n_particles=30", "data.n_targets=20"],
        )
        flow = make_flow(cfg)
        x = flow.init(None).particles + 0.01  # off the targets' grid of values
        fused_loss, fused_grad = flow._dense_loss_and_grad(x)
        u = flow.coefficients(x)
        ref_loss, ref_grad = jax.value_and_grad(flow.generator_loss)(x, x, u, True)
        np.testing.assert_allclose(fused_loss, ref_loss, rtol=1e-8)
        np.testing.assert_allclose(fused_grad, ref_grad, rtol=1e-7, atol=1e-12)
