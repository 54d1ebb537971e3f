import csv
import json
import math
import shutil
import types

import jax
import numpy as np
import pytest
from train_checks import adam_first_step

from generative.core.checkpoint import Checkpointer
from generative.core.config import resolve
from video import main as video_main
from video import train

TINY_MODEL = [
    "model.nf=4",
    "model.nhx=8",
    "model.ny=3",
    "model.nz=2",
    "model.nw=6",
    "model.nt_inf=2",
    "model.nh_inf=8",
    "model.nh_res=8",
    "model.nlayers_res=3",
    "batch_size=4",
    "num_steps=2",
    "log_every=1",
    "checkpoint_every=1",
    "progress=False",
    "eval.num_videos=3",
    "eval.n_samples=2",
    "eval.batch_size=2",
    "eval.num_gifs=1",
    "eval.log_videos=0",
    "eval.at_end=False",
]
MMNIST = TINY_MODEL + [
    "seq_len=4",
    "nt_cond=2",
    "eval.horizon=3",
    "num_font_digits=40",
    "digits=font",
]


def _params(workdir):
    config = resolve("video.configs", "smmnist_tiny", MMNIST)
    return train.restore_variables(config, workdir)


def test_mmnist_train_resume_eval_explore(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    argv = ["--config", "smmnist_tiny", "--workdir", str(a)] + MMNIST
    assert video_main.main(["train"] + argv) == 0
    rows = (a / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and "kl_z" in rows[0] and "residual_norm" in rows[0]
    # resume from the step-1 checkpoint equals the uninterrupted run
    shutil.copytree(a, b)
    shutil.rmtree(b / "checkpoints" / "2")
    assert video_main.main(["train", "--config", "smmnist_tiny", "--workdir", str(b)] + MMNIST) == 0
    pa, pb = _params(a), _params(b)
    assert jax.tree.all(jax.tree.map(lambda x, y: bool(np.array_equal(x, y)), pa, pb))
    # evaluation: CSV + markdown with the baseline, per-frame curves, GIFs
    assert video_main.main(["eval"] + argv) == 0
    res = (a / "eval" / "results.csv").read_text()
    assert "repeat last frame" in res and "black frames" in res and "ssim" in res
    md = (a / "eval" / "results.md").read_text()
    assert md.startswith("| model | PSNR | SSIM |")
    assert len((a / "eval" / "per_frame.csv").read_text().splitlines()) == 1 + 3
    assert (a / "eval" / "sample_0.gif").stat().st_size > 0
    summary = json.loads((a / "eval" / "summary.json").read_text())
    assert "font" in summary["data"]
    assert video_main.main(["explore"] + argv) == 0
    for name in ("frame_rate", "content_swap", "interpolation"):
        assert (a / "explore" / f"{name}.gif").stat().st_size > 0


def _write_kth(root, frames=24):
    rng = np.random.default_rng(0)
    for person in (1, 22):
        d = root / "running"
        d.mkdir(parents=True, exist_ok=True)
        np.save(
            d / f"person{person:02d}_running_d1_uncomp.npy",
            rng.integers(0, 256, (frames, 64, 64), dtype=np.uint8),
        )


def test_kth_experiment_from_disk_layout(tmp_path):
    _write_kth(tmp_path / "kth")
    config = resolve(
        "video.configs", "kth", TINY_MODEL + [f"data_dir={tmp_path / 'kth'}", "seq_len=4"]
    )
    experiment, data = train.make_experiment(config)
    batch = experiment.batch_fn(3)
    assert batch.shape == (4, 4, 64, 64, 1)
    np.testing.assert_array_equal(batch, experiment.batch_fn(3))
    test = data.test_videos(2, 12, seed=42)  # person 22 only
    assert test.shape == (2, 12, 64, 64, 1)
    state = jax.eval_shape(experiment.init, jax.random.PRNGKey(0))
    enc = state.params["encoder"]  # VGG64: 10 3×3 convs + the final 4×4
    assert "Conv_10" in enc and "Conv_11" not in enc


def test_bair_experiment_on_mocked_tfds(tmp_path):
    import tensorflow_datasets as tfds

    config = resolve("video.configs", "bair", TINY_MODEL + ["seq_len=3"])
    with tfds.testing.mock_data(num_examples=4):
        experiment, data = train.make_experiment(config)
        batch = experiment.batch_fn(0)
    assert batch.shape == (4, 3, 64, 64, 3) and batch.dtype == np.float32
    state = jax.eval_shape(experiment.init, jax.random.PRNGKey(0))
    assert state.params["decoder"]["ConvTranspose_1"]["kernel"].shape[-1] == 3  # RGB output


def _write_human(root, frames=40):
    rng = np.random.default_rng(0)
    for s in (1, 9):
        (root / f"S{s}").mkdir(parents=True)
        np.save(root / f"S{s}" / "Walking.npy", rng.integers(0, 256, (frames, 64, 64, 3), np.uint8))


SMOKE = [
    "num_steps=1",
    "seq_len=3",
    "nt_cond=2",
    "eval.horizon=2",
    "eval.num_videos=2",
    "eval.n_samples=3",
]


def test_human_experiment_from_disk_layout(tmp_path):
    """Human3.6M from files on disk: RGB batches of the preset's length and an RGB decoder on
    the VGG encoder (the one combination the CLI runs below do not train)."""
    _write_human(tmp_path / "h")
    config = resolve("video.configs", "human", TINY_MODEL + [f"data_dir={tmp_path / 'h'}"] + SMOKE)
    experiment, _ = train.make_experiment(config)
    batch = experiment.batch_fn(0)
    assert batch.shape == (config.batch_size, 3, 64, 64, 3) and batch.dtype == np.float32
    state = jax.eval_shape(experiment.init, jax.random.PRNGKey(0))
    assert "Conv_10" in state.params["encoder"]  # VGG64
    assert state.params["decoder"]["ConvTranspose_1"]["kernel"].shape[-1] == 3


@pytest.mark.parametrize("preset", ["kth", "bair"])
def test_real_data_presets_train_and_eval(preset, tmp_path):
    """One training step and a checkpoint through the CLI on the real-data preset families
    (KTH from files on disk, BAIR from mocked tfds), and the evaluation protocol on BAIR (the
    same code for all, RGB like Human3.6M)."""
    import tensorflow_datasets as tfds

    extra = []
    if preset == "kth":
        _write_kth(tmp_path / "data")
        extra = [f"data_dir={tmp_path / 'data'}"]
    argv = ["--config", preset, "--workdir", str(tmp_path / "run")] + TINY_MODEL + SMOKE + extra
    with tfds.testing.mock_data(num_examples=4):
        assert video_main.main(["train"] + argv) == 0
        if preset == "bair":
            assert video_main.main(["eval"] + argv) == 0
            res = (tmp_path / "run" / "eval" / "results.csv").read_text()
            assert "repeat last frame" in res
    with open(tmp_path / "run" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1
    channels = 1 if preset == "kth" else 3
    config = resolve("video.configs", preset, TINY_MODEL + SMOKE + extra)
    experiment, _ = train.make_experiment(config, data=types.SimpleNamespace(batch=None))
    ckpt = Checkpointer(tmp_path / "run" / "checkpoints")
    state = ckpt.restore(jax.eval_shape(experiment.init, jax.random.PRNGKey(0)), 1)
    ckpt.close()
    assert state.params["decoder"]["ConvTranspose_1"]["kernel"].shape[-1] == channels
    # the logged step against values recomputed from its pieces
    row = {k: float(x) for k, x in rows[0].items() if x}
    cfg = train.model_config(config)
    elbo = (
        row["nll"]
        + cfg.beta_y * row["kl_y"]
        + cfg.beta_z * row["kl_z"]
        + cfg.l2_res * row["residual_norm"]
    )
    assert row["loss"] == pytest.approx(elbo, rel=1e-6)
    # Gaussian observations of std ν: nll per video = P (MSE / 2ν² + log ν + ½ log 2π), P pixels
    pixels = config.seq_len * 64 * 64 * channels
    nu = cfg.obs_scale
    nll = pixels * (row["mse"] / (2 * nu**2) + math.log(nu) + 0.5 * math.log(2 * math.pi))
    assert row["nll"] == pytest.approx(nll, rel=1e-5)
    # the checkpoint holds the parameters after the step and Adam's first-step moments
    adam_first_step(state, config.optimizer, row)


def test_cli_errors(tmp_path, capsys):
    assert video_main.main(["train", "--config", "nope"]) == 2
    assert "valid presets" in capsys.readouterr().err
    assert (
        video_main.main(
            [
                "train",
                "--config",
                "kth",
                "--workdir",
                str(tmp_path / "r"),
                f"data_dir={tmp_path / 'missing'}",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert str(tmp_path / "missing") in err and len(err.strip().splitlines()) == 1
    assert (
        video_main.main(
            ["train", "--config", "smmnist_tiny", "--workdir", str(tmp_path / "r2"), "dataset=ucf"]
        )
        == 2
    )
    assert "valid choices: smmnist" in capsys.readouterr().err
    assert (
        video_main.main(
            ["eval", "--config", "smmnist_tiny", "--workdir", str(tmp_path / "none")] + MMNIST
        )
        == 2
    )
    assert "no checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("preset", ["smmnist", "dmmnist", "kth", "human", "bair"])
def test_paper_presets(preset):
    c = resolve("video.configs", preset)
    cfg = train.model_config(c)
    table = {
        "smmnist": (20, 5, "dcgan", False, 1, 1.0, 2.0, 15, 5, 128, 1_100_000),
        "dmmnist": (20, 5, "dcgan", False, 1, 1.0, 2.0, 15, 5, 128, 900_000),
        "kth": (50, 3, "vgg", True, 2, 0.2, 1.0, 20, 10, 100, 200_000),
        "human": (50, 3, "vgg", True, 2, 0.2, 1.0, 16, 8, 100, 350_000),
        "bair": (50, 2, "vgg", True, 2, 0.71, 1.0, 12, 2, 192, 1_500_000),
    }[preset]
    assert (
        cfg.ny,
        cfg.nt_inf,
        cfg.archi,
        cfg.skipco,
        cfg.n_euler_steps,
        cfg.obs_scale,
        cfg.beta_z,
        c.seq_len,
        c.nt_cond,
        c.batch_size,
        c.num_steps,
    ) == table
    assert cfg.ny == cfg.nz and c.optimizer.lr == 3e-4
    assert c.optimizer.schedule == "constant_then_linear_decay"
    assert cfg.res_gain == (1.2 if preset in ("kth", "human") else 1.41)
    assert (
        c.nt_cond + c.eval.horizon
        == {"smmnist": 25, "dmmnist": 100, "kth": 40, "human": 53, "bair": 30}[preset]
    )
