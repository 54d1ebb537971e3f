"""The shared loop: resume = uninterrupted (bit for bit), NaN stop, sharding, outputs."""

import csv
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from generative.core import config as config_lib
from generative.core import sharding
from generative.core.checkpoint import Checkpointer, CheckpointError
from generative.core.train import (
    Experiment,
    NonFiniteError,
    TrainState,
    loss_step,
    make_optimizer,
    run,
)

W_TRUE = jnp.arange(1.0, 5.0)


def _config(**kw):
    c = config_lib.base_config()
    c.num_steps, c.log_every, c.checkpoint_every, c.progress = 40, 5, 10, False
    c.optimizer.lr = 0.05
    c.optimizer.schedule = "constant_then_linear_decay"
    for k, v in kw.items():
        if k == "lr":
            c.optimizer.lr = v
        else:
            c[k] = v
    return c


def _experiment(config, host_batches=False):
    tx = make_optimizer(config.optimizer, config.num_steps)

    def init(key):
        params = {"w": 0.1 * jax.random.normal(key, (4,)), "b": jnp.zeros(())}
        return TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), None)

    def loss_fn(params, model_state, batch, key):
        x = jax.random.normal(key, (16, 4)) if batch is None else batch  # [B, 4]
        noise = 0.1 * jax.random.normal(jax.random.fold_in(key, 1), (x.shape[0],))
        y = x @ W_TRUE + noise
        loss = jnp.mean((x @ params["w"] + params["b"] - y) ** 2)
        return loss, ({"w0": params["w"][0]}, model_state)

    batch_fn = None
    if host_batches:
        batch_fn = lambda i: np.random.default_rng(i).normal(size=(16, 4)).astype(np.float32)
    return Experiment(init=init, step=loss_step(loss_fn, tx), batch_fn=batch_fn)


def _leaves(state):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(jax.device_get(state))]


@pytest.mark.parametrize("host_batches", [False, True])
def test_resume_is_bit_identical(tmp_path, host_batches):
    full = run(_experiment(_config(), host_batches), _config(), tmp_path / "full")
    # An interrupted run: stops after 20 steps, then the same command resumes it.
    part_cfg = _config(num_steps=20)
    run(_experiment(_config(), host_batches), part_cfg, tmp_path / "resumed")
    resumed = run(_experiment(_config(), host_batches), _config(), tmp_path / "resumed")
    for a, b in zip(_leaves(full), _leaves(resumed)):
        np.testing.assert_array_equal(a, b)
    assert int(resumed.step) == 40
    rows = list(csv.DictReader(open(tmp_path / "resumed" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == list(range(5, 45, 5))
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert (tmp_path / "full" / "config.json").exists()
    assert list((tmp_path / "full" / "tb").glob("events.out.tfevents.*"))


def test_nonfinite_stops_and_keeps_last_good_checkpoint(tmp_path):
    cfg = _config(lr=0.9, num_steps=400)
    cfg.optimizer.name = "sgd"
    with pytest.raises(NonFiniteError, match=r"non-finite .* at step \d+; stopped, last good") as e:
        run(_experiment(cfg), cfg, tmp_path)
    msg = str(e.value)
    assert "\n" not in msg
    bad_step = int(msg.split("at step ")[1].split(";")[0])
    ckpt = Checkpointer(tmp_path / "checkpoints")
    last = ckpt.latest_step()
    assert last is not None and last < bad_step
    abstract = jax.eval_shape(_experiment(cfg).init, jax.random.PRNGKey(0))
    restored = ckpt.restore(abstract)
    assert all(np.isfinite(x).all() for x in _leaves(restored))
    ckpt.close()


def test_incompatible_checkpoint_is_refused(tmp_path):
    cfg = _config(num_steps=10)
    run(_experiment(cfg), cfg, tmp_path)
    ckpt = Checkpointer(tmp_path / "checkpoints")
    wrong = {"w": jax.ShapeDtypeStruct((7,), jnp.float32)}
    with pytest.raises(CheckpointError, match="cannot be restored|expects"):
        ckpt.restore(wrong)
    ckpt.close()


def test_restore_from_eval_shape_gives_saved_values_without_sharding_warning(tmp_path):
    state = {"w": jnp.arange(4.0), "n": jnp.ones((2, 3), jnp.int32)}
    ckpt = Checkpointer(tmp_path / "c")
    ckpt.save(3, state)
    ckpt.wait()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # orbax warns when no sharding is given
        got = ckpt.restore(jax.eval_shape(lambda: state))
    ckpt.close()
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(state)
    for a, b in zip(_leaves(got), _leaves(state)):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


def test_sharded_step_equals_single_device(tmp_path):
    assert jax.device_count() == 4
    cfg = _config(num_steps=10)
    one = run(
        _experiment(cfg, True), cfg, tmp_path / "one", mesh=sharding.data_mesh(jax.devices()[:1])
    )
    four = run(_experiment(cfg, True), cfg, tmp_path / "four", mesh=sharding.data_mesh())
    for a, b in zip(_leaves(one), _leaves(four)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_batch_not_divisible_by_devices():
    with pytest.raises(ValueError, match="divisible by the 4 local devices"):
        sharding.shard_batch(np.zeros((6, 2)), sharding.data_mesh())
