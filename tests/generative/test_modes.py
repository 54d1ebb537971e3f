"""The mode-coverage study: per-run rows, cell statistics recomputed from them, resumption."""

import csv
import math

import jax
import numpy as np
import pytest

from generative import modes
from generative.configs import modes as modes_preset
from generative.configs.gan_grid import tiny

_PRESET_CELL_CONFIG = modes.cell_config


def _tiny_cell_config(model, dataset, batch_size):
    config = _PRESET_CELL_CONFIG(model, dataset, batch_size)
    with config.unlocked():
        tiny(config)
        config.batch_size = batch_size
    return config


@pytest.fixture
def tiny_table(monkeypatch):
    monkeypatch.setattr(modes, "cell_config", _tiny_cell_config)
    config = modes_preset.get_config()
    with config.unlocked():
        t = config.table
        t.models, t.datasets, t.seeds, t.steps, t.batch_size = "ali", "ring", 3, 4, 16
        t.samples.ali_paper, t.samples.pacgan = 400, 100
    return config


def test_protocol_hyperparameters():
    table = modes_preset.get_config().table
    lr, b1 = modes.protocol_hyperparameters("ali_paper", jax.random.PRNGKey(0), 500, table)
    lr, b1 = np.asarray(lr), np.asarray(b1)
    assert lr.min() >= 1e-4 * (1 - 1e-6) and lr.max() <= 1e-3 * (1 + 1e-6)
    assert 0.5 <= b1.min() and b1.max() <= 0.9
    # log-uniform: log lr is uniform, its mean is the midpoint (± 4 standard errors)
    mid, se = (math.log(1e-4) + math.log(1e-3)) / 2, math.log(10) / math.sqrt(12 * 500)
    assert abs(np.log(lr).mean() - mid) < 4 * se
    lr, b1 = modes.protocol_hyperparameters("pacgan", jax.random.PRNGKey(0), 3, table)
    np.testing.assert_allclose(np.asarray(lr), 1e-4, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(b1), 0.8, rtol=1e-6)
    with pytest.raises(ValueError, match="valid: ali_paper, pacgan"):
        modes.protocol_hyperparameters("veegan", jax.random.PRNGKey(0), 3, table)


def test_table_rows_statistics_and_resume(tmp_path, tiny_table, monkeypatch):
    rows = modes.run_table(tiny_table, tmp_path)
    assert [(r["protocol"], r["model"]) for r in rows] == [("ali_paper", "ali"), ("pacgan", "ali")]
    with (tmp_path / "runs.csv").open() as f:
        runs = list(csv.DictReader(f))
    assert len(runs) == 2 * 3
    for r in rows:
        mine = [x for x in runs if (x["protocol"], x["model"]) == (r["protocol"], r["model"])]
        modes_ = np.array([float(x["modes"]) for x in mine])
        assert r["modes"]["mean"] == pytest.approx(modes_.mean())
        assert r["modes"]["std"] == pytest.approx(modes_.std(ddof=1))
        assert (r["modes"]["min"], r["modes"]["max"]) == (modes_.min(), modes_.max())
        assert 0 <= r["modes_high_quality"]["max"] <= r["modes"]["max"] <= 8
        lrs = {float(x["lr"]) for x in mine}
        assert len(lrs) == (3 if r["protocol"] == "ali_paper" else 1)
    assert "| pacgan | ring | ALI |" in (tmp_path / "table.md").read_text()

    # a rerun with the same settings reads every cell back instead of training
    def refuse(*args, **kwargs):
        raise AssertionError("a stored cell was trained again")

    monkeypatch.setattr(modes, "run_cell", refuse)
    again = modes.run_table(tiny_table, tmp_path)
    assert [r["modes"] for r in again] == [r["modes"] for r in rows]
