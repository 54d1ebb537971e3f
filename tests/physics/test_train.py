"""Training entry points: one-step smoke tests per preset family, resume == uninterrupted."""

import json

import numpy as np

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


def test_waveeq_tiny_trains_evaluates_and_resumes_exactly(tmp_path):
    full = _run(tmp_path, "full", "num_steps=2")
    res = json.loads((full / "results.json").read_text())
    assert res["horizon"] == 6 and np.isfinite(res["mse_t+6"])
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
    res = json.loads((w / "results.json").read_text())
    for key in ("psnr_t+3", "ssim_t+3", "swap_psnr_t+3", "swap_ssim_t+3"):
        assert np.isfinite(res[key]), key


def test_sst_one_step_on_synthetic_files(tmp_path):
    root = tmp_path / "data" / "sst"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for z in range(1, 21):
        np.save(root / f"zone_{z:02d}.npy", rng.normal(size=(12, 16, 16)).astype(np.float32))
    w = _run(
        tmp_path,
        "sst",
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
        preset="sst",
    )
    assert np.isfinite(json.loads((w / "results.json").read_text())["mse_t+6"])


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
