"""Adequacy (paper Fig. 1) and gradient-field (paper Figs. 6-7) pictures."""

import csv

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gantk import dynamics
from gantk.field import generator_field, pad_points
from gantk.kernels import default_kernel_config, make_kernel
from gantk.main import main


def _kernel(architecture):
    kc = default_kernel_config()
    kc.architecture = architecture
    return make_kernel(kc)


@pytest.mark.parametrize("architecture,loss", [("relu_nobias", "ipm"), ("rbf", "lsgan")])
def test_field_equals_central_finite_differences_float64(architecture, loss):
    with jax.enable_x64(True):
        k = _kernel(architecture)
        real = jnp.array([1.0, 0.0])
        xs = jnp.array([[-1.5, 0.5], [0.3, 1.7], [1.8, 0.2]])
        _, neg_grad = generator_field(k, loss, 0.7, real)(xs)
        c = dynamics.gan_loss(loss).c
        C = jax.jit(lambda z, X, u: c(k(z[None], X) @ u)[0])
        h = 1e-4  # the NTK's arccos loses digits at angles below ~1e-5
        for x, g in zip(xs, np.asarray(neg_grad)):
            X = jnp.stack([x, real])  # the discriminator trained on ({x}, {y}), then held fixed
            u = dynamics.dual_coefficients(loss, k(X, X), 1, 1, 0.7, method="closed_form")
            # central differences cancel the NTK's cusp at z = x up to O(h) (they converge to
            # the symmetric subgradient the field uses); one Richardson step removes the O(h)
            fd = []
            for e in jnp.eye(2):
                d1, d2 = [(C(x + s * e, X, u) - C(x - s * e, X, u)) / (2 * s) for s in (2 * h, h)]
                fd.append(2 * d2 - d1)
            # rounding: arccos near 1 keeps ~1e-12 of the kernel at angles ~h, divided by h
            np.testing.assert_allclose(-g, np.asarray(fd), rtol=1e-6, atol=5e-8)


def test_zero_padding_rescales_stax_fields_and_leaves_isotropic_kernels_unchanged_float64():
    with jax.enable_x64(True):
        real = jnp.array([1.0, 0.0])
        xs = jnp.array([[-1.5, 0.5], [0.3, 1.7], [1.8, 0.2], [0.0, 1.0]])
        D = 6

        # A kernel of ‖x − y‖ only: padding changes nothing.
        def gauss(a, b):  # [n1, D], [n2, D] or None (= a) -> [n1, n2]
            b = a if b is None else b
            return jnp.exp(-0.5 * jnp.sum((a[:, None] - b[None]) ** 2, -1))

        v2, g2 = generator_field(gauss, "lsgan", 1.0, real)(xs)
        vD, gD = generator_field(gauss, "lsgan", 1.0, pad_points(real[None], D)[0])(
            pad_points(xs, D)
        )
        np.testing.assert_allclose(vD, v2, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(gD[:, :2], g2, rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(gD[:, 2:], 0.0)
        # stax kernels (rbf NNGP here; relu NTK alike): the fan-in-normalised first layer sees s·x,
        # s = √(2/D), so field_D(x; y) = s · field_2(s x; s y) and c is unchanged.
        s = np.sqrt(2 / D)
        for arch in ("rbf",):
            k = _kernel(arch)
            vD, gD = generator_field(k, "ipm", 1.0, pad_points(real[None], D)[0])(pad_points(xs, D))
            v2, g2 = generator_field(k, "ipm", 1.0, s * real)(s * xs)
            # (the NTK's arccos amplifies round-off near equal angles: 1e-7, not 1e-15)
            np.testing.assert_allclose(vD, v2, rtol=1e-7, atol=1e-10)
            np.testing.assert_allclose(gD[:, :2], s * g2, rtol=1e-6, atol=1e-9)
            np.testing.assert_allclose(gD[:, 2:], 0.0, atol=1e-9)


def test_field_cli_smoke(tmp_path):
    rc = main(
        [
            "field",
            "--config",
            "field:relu_nobias",
            "--workdir",
            str(tmp_path),
            "field.nx=5",
            "field.ny=3",
            "pad_dim=4",
            "progress=false",
        ]
    )
    assert rc == 0
    assert (tmp_path / "field.png").stat().st_size > 0
    rows = list(csv.DictReader(open(tmp_path / "field.csv")))
    assert len(rows) == 15
    # the fake on the real point: the discriminator is 0 and so is the arrow
    on_real = [r for r in rows if float(r["x0"]) == 1.0 and float(r["x1"]) == 0.0]
    assert len(on_real) == 1 and abs(float(on_real[0]["neg_grad0"])) < 1e-6
    assert main(["field", "--workdir", str(tmp_path), "loss.name=wgan"]) == 2


def test_adequacy_error_shrinks_with_width(tmp_path):
    # A small version of Fig. 1: one hidden layer, widths 16 / 256 / 4096, 6 seeds each.
    rc = main(
        [
            "adequacy",
            "--config",
            "adequacy_1d",
            "--workdir",
            str(tmp_path),
            "kernel.depth=1",
            "widths=(16,256,4096)",
            "n_seeds=6",
            "optimizer.lr=0.05",
            "plot.grid_size=32",
            "progress=false",
        ]
    )
    assert rc == 0
    assert (tmp_path / "adequacy.png").stat().st_size > 0
    rows = list(csv.DictReader(open(tmp_path / "errors.csv")))
    for loss in ("ipm", "lsgan"):
        errs = [float(r["max_abs_error_mean"]) for r in rows if r["loss"] == loss]
        assert len(errs) == 3 and errs[0] > 2 * errs[1] > 4 * errs[2], (loss, errs)
    curves = list(csv.DictReader(open(tmp_path / "curves.csv")))
    assert len(curves) == 2 * 4 * 32  # 2 losses × (3 widths + ∞) × grid


def test_adequacy_2d_cli_smoke(tmp_path):
    rc = main(
        [
            "adequacy",
            "--config",
            "adequacy_2d",
            "--workdir",
            str(tmp_path),
            "kernel.depth=1",
            "widths=(8,)",
            "n_seeds=1",
            "optimizer.lr=0.1",
            "plot.grid_size=6",
            "loss.names=lsgan",
            "data.n_fake=3",
            "data.n_real=3",
            "progress=false",
        ]
    )
    assert rc == 0
    assert (tmp_path / "adequacy.png").stat().st_size > 0
    rows = list(csv.DictReader(open(tmp_path / "errors.csv")))
    assert [(r["loss"], r["width"]) for r in rows] == [("lsgan", "8")]
    bad = ["adequacy", "--workdir", str(tmp_path), "data.dim=3"]
    assert main(bad) == 2
