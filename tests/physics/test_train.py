"""Training entry points: one step per preset family checked against the loss, Adam's first
update and the checkpoint; resume == uninterrupted."""

import json
import math

import jax
import numpy as np
import pytest
from train_checks import adam_first_step

from generative.core.checkpoint import Checkpointer
from generative.core.config import resolve
from physics import train
from physics.main import main


def _run(tmp_path, name, *overrides, preset="waveeq_tiny"):
    workdir = tmp_path / name
    rc = main(
        [
            "train",
            "--config",
            preset,
            "--workdir",
            str(workdir),
            f"data_dir={tmp_path / 'data'}",
            *overrides,
        ]
    )
    assert rc == 0
    return workdir


def _last_row(workdir):
    lines = (workdir / "metrics.csv").read_text().strip().splitlines()
    header = lines[0].split(",")
    return dict(zip(header, lines[-1].split(",")))


def _first_row(workdir):
    lines = (workdir / "metrics.csv").read_text().strip().splitlines()
    header = lines[0].split(",")
    row = [r for r in lines[1:] if r.split(",")[0] == "1"][0]
    return {k: float(v) for k, v in zip(header, row.split(",")) if v}


def _check_first_step(tmp_path, workdir, preset, *overrides):
    """The metrics logged for step 1 against values recomputed from their pieces: the loss is
    λ_pred L_pred + λ_AE L_AE + λ_S L_reg^S + λ_T L_reg^T with the config's weights; the step-1
    checkpoint has the logged parameter norm and Adam's first-step moments and update."""
    config = resolve("physics.configs", preset, [f"data_dir={tmp_path / 'data'}", *overrides])
    row = _first_row(workdir)
    w = config.loss
    s_weight = w.s if config.model.use_content else 0.0
    terms = w.pred * row["pred"] + w.ae * row["ae"] + s_weight * row["reg_s"] + w.t * row["reg_t"]
    assert row["loss"] == pytest.approx(terms, rel=1e-6)
    exp, _, _ = train.make_experiment(config)
    ckpt = Checkpointer(workdir / "checkpoints")
    state = ckpt.restore(jax.eval_shape(exp.init, jax.random.PRNGKey(0)), 1)
    ckpt.close()
    adam_first_step(state, config.optimizer, row)


def test_waveeq_tiny_trains_evaluates_and_resumes_exactly(tmp_path):
    full = _run(tmp_path, "full", "num_steps=2")
    res = json.loads((full / "results.json").read_text())
    assert res["horizon"] == 6
    _check_first_step(tmp_path, full, "waveeq_tiny", "num_steps=2")
    assert (full / "results.csv").read_text().count("\n") == 1 + 6
    _run(tmp_path, "split", "num_steps=1")
    resumed = _run(tmp_path, "split", "num_steps=2")  # resumes from the step-1 checkpoint
    a, b = _last_row(full), _last_row(resumed)
    for key in ("loss", "param_norm", "pred", "ae", "eval_mse_mean"):
        assert a[key] == b[key], key
    assert json.loads((resumed / "results.json").read_text())["mse_t+6"] == res["mse_t+6"]
    # evaluation command on the trained run
    assert (
        main(
            [
                "eval",
                "--config",
                "waveeq_tiny",
                "--workdir",
                str(full),
                f"data_dir={tmp_path / 'data'}",
                "num_steps=2",
            ]
        )
        == 0
    )


def test_mmnist_tiny_one_step_with_content_swap(tmp_path):
    w = _run(tmp_path, "mm", preset="mmnist_tiny")
    _check_first_step(tmp_path, w, "mmnist_tiny")
    res = json.loads((w / "results.json").read_text())
    # mean over windows of 10 log10(1 / MSE) ≥ 10 log10(1 / mean MSE) (Jensen), and clipping the
    # prediction to [0, 1] only lowers the per-window MSE
    assert res["psnr_t+3"] >= 10 * math.log10(1 / res["mse_t+3"]) - 1e-4
    for key in ("ssim_t+3", "swap_ssim_t+3"):
        assert -1 <= res[key] <= 1, key
    assert res["swap_psnr_t+3"] > 0


def test_sst_one_step_on_synthetic_files(tmp_path):
    root = tmp_path / "data" / "sst"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for z in range(1, 21):
        np.save(root / f"zone_{z:02d}.npy", rng.normal(size=(12, 16, 16)).astype(np.float32))
    overrides = [
        "num_steps=1",
        "batch_size=4",
        "model.nf=4",
        "model.content_dim=3",
        "model.dynamic_dim=2",
        "dynamics.hidden=4",
        "eval_windows=4",
        "log_eval_windows=0",
        "progress=False",
        "log_every=1",
        "checkpoint_every=1",
    ]
    w = _run(tmp_path, "sst", *overrides, preset="sst")
    _check_first_step(tmp_path, w, "sst", *overrides)
    res = json.loads((w / "results.json").read_text())
    assert res["horizon"] == 6 and res["num_test_windows"] == 4


def test_missing_data_and_bad_options_exit_2(tmp_path, capsys):
    rc = main(
        ["train", "--config", "taxibj", "--workdir", str(tmp_path / "t"), f"data_dir={tmp_path}"]
    )
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "taxibj/train.npz" in err and len(err.splitlines()) == 1
    rc = main(
        [
            "train",
            "--config",
            "waveeq_tiny",
            "--workdir",
            str(tmp_path / "u"),
            f"data_dir={tmp_path}",
            "dynamics.solver=rk45",
        ]
    )
    assert rc == 2
    assert "unknown ODE solver 'rk45'" in capsys.readouterr().err
