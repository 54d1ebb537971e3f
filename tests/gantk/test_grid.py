"""Datasets, finite-width flows, the paper's presets and the `gantk table` grid."""

import jax
import numpy as np
import pytest

from gantk.configs import paper
from gantk.flow import make_flow
from gantk.main import main as gantk_main
from gantk.table import run_table
from generative.core import config as config_lib
from generative.core.train import run
from generative.data import densities


def test_image_densities_are_offline_and_on_the_square():
    a, b = densities.image_pair("ab")
    assert a.shape == b.shape == (64, 64) and 0 <= a.min() and a.max() <= 1
    assert a.sum() > 50 and np.abs(a - b).sum() > 50  # two different, non-empty glyphs
    for img in (a, b, *densities.image_pair("density")):
        x = np.asarray(densities.sample_image_density(jax.random.PRNGKey(0), img, 400))
        assert np.abs(x).max() < 1.1
        # samples fall where the image is dark: mean darkness at samples >> image mean
        cols = np.clip(((x[:, 0] + 1) / 2 * 64).astype(int), 0, 63)
        rows = np.clip(((1 - x[:, 1]) / 2 * 64).astype(int), 0, 63)
        assert img[rows, cols].mean() > 2 * img.mean()
    with pytest.raises(ValueError, match="valid: ab, density"):
        densities.image_pair("xy")


def test_every_paper_cell_resolves():
    assert len(paper.VARIANTS) == 3 * (5 * 3 - 3)
    for cell in paper.VARIANTS:
        c = config_lib.resolve("gantk.configs", f"paper:{cell}")
        dataset, loss, kernel = cell.split("-")
        assert c.data.name == dataset and c.kernel.architecture == kernel
        assert c.discriminator.finite == (loss in ("ipm", "ipm_reset", "lsgan"))
    assert "eight_gaussians-ipm-rbf" not in paper.VARIANTS


@pytest.mark.parametrize("cell", ["ab-ipm_reset-relu", "density-lsgan-relu_nobias"])
def test_finite_width_flow_resumes_bit_identically(tmp_path, cell):
    small = ["progress=false", "data.n_particles=32", "data.n_targets=32", "log_every=2",
             "checkpoint_every=2", "eval.figures=false", "loss.t=0.2"]  # fmt: skip
    full_cfg = config_lib.resolve("gantk.configs", f"paper:{cell}", [*small, "num_steps=4"])
    part_cfg = config_lib.resolve("gantk.configs", f"paper:{cell}", [*small, "num_steps=2"])
    full = run(make_flow(full_cfg).experiment(), full_cfg, tmp_path / "full")
    run(make_flow(part_cfg).experiment(), part_cfg, tmp_path / "resumed")
    resumed = run(make_flow(full_cfg).experiment(), full_cfg, tmp_path / "resumed")
    for a, b in zip(jax.tree_util.tree_leaves(full), jax.tree_util.tree_leaves(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(
        np.asarray(full.particles), np.asarray(make_flow(full_cfg).init(None).particles)
    )


def test_table_runs_the_grid_and_writes_csv_and_markdown(tmp_path, capsys):
    code = gantk_main(
        ["table", "--workdir", str(tmp_path), "--steps", "2", "--seeds", "1", "--workers", "1",
         "datasets=('ab',)", "losses=('inf_ipm',)", "kernels=('relu',)", "log_every=1"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    md = (tmp_path / "table.md").read_text()
    assert "| ab |" in md and "inf_ipm relu" in md and "failed" not in md
    rows = (tmp_path / "table.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("ab-inf_ipm-relu,ab,inf_ipm,relu,0,2,")


def test_table_rejects_unknown_names():
    cfg = config_lib.resolve("gantk.configs", "table", ["losses=('wgan',)"])
    with pytest.raises(ValueError, match="unknown table loss 'wgan'; valid: inf_ipm"):
        run_table(cfg, "/nonexistent")


def test_neural_generator_gradient_is_the_chain_rule_and_it_learns(tmp_path):

    with jax.enable_x64(True):
        cfg = config_lib.resolve(
            "gantk.configs", "demo",
            ["dtype=float64", "generator.kind=mlp", "data.n_particles=32", "data.n_targets=32",
             "generator.width=16", "generator.optimizer.name=sgd", "generator.optimizer.lr=0.5"],
        )  # fmt: skip
        flow = make_flow(cfg)
        state = flow.init(None)
        key = jax.random.PRNGKey(7)
        new, _ = flow.step(state, None, key)
        params, _ = state.generator
        z = flow._latent(jax.random.split(key)[1])

        def direct(p):  # autodiff through g_θ, the discriminator trained on g_θ(z) held fixed
            x = flow.generator.apply(p, z)
            fixed = jax.lax.stop_gradient(x)
            return flow.generator_loss(x, fixed, flow.coefficients(fixed), True)

        grads = jax.grad(direct)(params)
        expected = jax.tree_util.tree_map(lambda p, g: p - 0.5 * g, params, grads)
        for a, b in zip(
            jax.tree_util.tree_leaves(new.generator[0]), jax.tree_util.tree_leaves(expected)
        ):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)

    cfg = config_lib.resolve(
        "gantk.configs", "demo",
        ["progress=false", "generator.kind=mlp", "generator.optimizer.lr=3e-3", "num_steps=60",
         "log_every=30", "checkpoint_every=30", "eval.figures=false", "data.n_particles=128",
         "data.n_targets=128"],
    )  # fmt: skip
    run(make_flow(cfg).experiment(), cfg, tmp_path)
    import csv

    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert float(rows[-1]["sinkhorn"]) < 0.5 * float(rows[0]["sinkhorn"])


def test_mnist_flow_offline_digits_and_image_outputs(tmp_path, capsys):
    code = gantk_main(
        ["flow", "--config", "images:mnist-inf_ipm-relu", "--workdir", str(tmp_path),
         "num_steps=4", "log_every=2", "checkpoint_every=2", "data.n_particles=32",
         "data.n_targets=32", "data.digit_source=font", "progress=false", "eval.max_frames=2"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "mnist targets: offline font digits" in out
    import imageio.v2 as imageio

    grid = imageio.imread(tmp_path / "images.png")
    assert grid.shape == (4 * 32, 8 * 32, 3)
    assert (tmp_path / "flow.gif").exists() and (tmp_path / "targets.png").exists()


def test_celeb_a_missing_names_the_folder_and_mock_data_loads(tmp_path):
    import tensorflow_datasets as tfds

    from generative.data.images import load_images

    with pytest.raises(FileNotFoundError, match=f"CelebA is not prepared under {tmp_path}"):
        load_images("celeb_a", 4, data_dir=str(tmp_path))
    with tfds.testing.mock_data(num_examples=6):
        imgs = load_images("celeb_a", 3, data_dir=str(tmp_path))
    assert imgs.images.shape == (3, 32, 32, 3)
    assert imgs.images.min() >= -1 and imgs.images.max() <= 1
    with pytest.raises(ValueError, match="valid: mnist, celeb_a"):
        load_images("cifar", 3)
