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


def _experiment(config, host_batches=False, width=4):
    tx = make_optimizer(config.optimizer, config.num_steps)

    def init(key):
        params = {"w": 0.1 * jax.random.normal(key, (width,)), "b": jnp.zeros(())}
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
    assert int(restored.step) == last
    assert all(np.isfinite(x).all() for x in _leaves(restored))
    ckpt.close()


# orbax closes its event loop when an array fails to read, while TensorStore completes the
# others: their callbacks raise where nothing can catch them (the command line silences them)
_ORBAX_CLOSED_LOOP = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def _corrupt(step_dir):
    """Overwrite every array data file of one checkpoint with garbage."""
    files = [f for f in step_dir.rglob("*") if f.is_file() and f.parent.name == "d"]
    assert files
    for f in files:
        f.write_bytes(b"not a chunk" * 7)
    return files


def _two_checkpoints(directory, cfg, width=4):
    """Checkpoints at steps 10 and 20 of two different initial states; returns them."""
    init = jax.jit(_experiment(cfg, width=width).init)
    states = {
        step: init(jax.random.PRNGKey(step))._replace(step=jnp.array(step, jnp.int32))
        for step in (10, 20)
    }
    ckpt = Checkpointer(directory)
    for step, state in states.items():
        ckpt.save(step, state)
    ckpt.close()
    return states


def _files(directory):
    return {f.relative_to(directory): f.read_bytes() for f in directory.rglob("*") if f.is_file()}


@_ORBAX_CLOSED_LOOP
def test_resume_falls_back_past_a_corrupt_checkpoint(tmp_path, caplog):
    cfg = _config(num_steps=10)
    states = _two_checkpoints(tmp_path / "checkpoints", cfg)
    _corrupt(tmp_path / "checkpoints" / "20")
    corrupt = _files(tmp_path / "checkpoints" / "20")

    with caplog.at_level("WARNING", logger="generative"):
        state = run(_experiment(cfg), cfg, tmp_path)  # resumes at step 10 = num_steps
    assert int(state.step) == 10
    for a, b in zip(_leaves(state), _leaves(states[10])):
        np.testing.assert_array_equal(a, b)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    aside = tmp_path / "checkpoints" / "unrestorable-20"
    assert len(warned) == 1 and "\n" not in warned[0], warned
    assert warned[0].startswith(
        f"checkpoint {tmp_path / 'checkpoints' / '20'} cannot be restored ("
    )
    assert warned[0].endswith(f", moved to {aside}; restored step 10 instead")
    assert _files(aside) == corrupt  # kept byte for byte, out of the way of new saves

    cfg = _config(num_steps=20)  # trains on from step 10 and saves step 20 anew
    state = run(_experiment(cfg), cfg, tmp_path)
    ckpt = Checkpointer(tmp_path / "checkpoints")
    assert ckpt.all_steps() == [10, 20]
    saved = ckpt.restore(jax.eval_shape(lambda: state))
    ckpt.close()
    assert int(state.step) == 20
    for a, b in zip(_leaves(saved), _leaves(state)):
        np.testing.assert_array_equal(a, b)


@_ORBAX_CLOSED_LOOP
def test_no_restorable_checkpoint_is_one_line_and_keeps_files(tmp_path):
    cfg = _config(num_steps=20)
    _two_checkpoints(tmp_path / "checkpoints", cfg)
    for step in (10, 20):
        _corrupt(tmp_path / "checkpoints" / str(step))
    before = _files(tmp_path / "checkpoints")
    with pytest.raises(CheckpointError) as e:
        run(_experiment(cfg), cfg, tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 500
    assert msg.startswith(
        f"none of the 2 checkpoints in {tmp_path / 'checkpoints'} can be restored"
    )
    assert "(newest, step 20: " in msg and msg.endswith("; they are left as they are")
    assert _files(tmp_path / "checkpoints") == before


@_ORBAX_CLOSED_LOOP
def test_incompatible_checkpoint_is_refused_in_one_line(tmp_path):
    cfg = _config(num_steps=20)
    _two_checkpoints(tmp_path / "checkpoints", cfg, width=4)
    with pytest.raises(CheckpointError) as e:
        run(_experiment(cfg, width=7), cfg, tmp_path)  # other parameter shapes
    assert str(e.value) == (
        f"checkpoint {tmp_path / 'checkpoints' / '20'} does not fit this run: 'params.w' has "
        "shape (4,), this run expects (7,); use another --workdir, or the settings it was "
        "saved with"
    )
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["10", "20"]


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


@pytest.mark.parametrize("host_batches", [False, True])
def test_compiler_options_reach_the_step_program(tmp_path, host_batches):
    """The experiment's per-program options are what compiles the step: an invalid one stops
    the run at compile time (naming it), a valid one trains as XLA's defaults do."""
    import dataclasses

    from generative.core import cpu_codegen

    bad = {"xla_cpu_experimental_ynn_fusion_type": "NOT_A_FUSION_TYPE"}
    exp = dataclasses.replace(_experiment(_config(), host_batches), compiler_options=lambda: bad)
    with pytest.raises(Exception, match="NOT_A_FUSION_TYPE"):
        run(exp, _config(num_steps=5), tmp_path / "bad")
    good = cpu_codegen.PRODUCTS_ONLY_OPTION
    exp = dataclasses.replace(_experiment(_config(), host_batches), compiler_options=lambda: good)
    ref = run(_experiment(_config(), host_batches), _config(num_steps=10), tmp_path / "ref")
    got = run(exp, _config(num_steps=10), tmp_path / "good")
    for a, b in zip(_leaves(ref), _leaves(got)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_runs_measured_faster_ask_for_the_products_only_options():
    from generative import ali, gan, vae
    from generative.core.config import load_preset
    from generative.core.cpu_codegen import products_only_options

    for module, preset in ((gan, "gan_grid_tiny"), (ali, "ali_grid_tiny")):
        exp = module.make_experiment(load_preset("generative.configs", preset))
        assert exp.compiler_options is products_only_options
    exp = gan.make_experiment(load_preset("generative.configs", "gan_digits_tiny"))
    assert exp.compiler_options is None  # not measured faster: XLA's defaults
    exp = vae.make_experiment(load_preset("generative.configs", "vae_digits_tiny"))
    assert exp.compiler_options is None


def test_conv_video_and_physics_runs_ask_for_xla_convolutions_and_trace_to_match(tmp_path):
    """SRVP and the separation models' training ask for XLA's own convolutions; the run loop
    then traces the step under `layers.xla_kernel_gradients`, and only then."""
    import dataclasses

    from generative import layers
    from generative.core import cpu_codegen
    from generative.core.config import load_preset
    from physics import train as physics_train
    from video import train as video_train

    exp, _ = video_train.make_experiment(load_preset("video.configs", "smmnist_tiny"))
    assert exp.compiler_options is cpu_codegen.xla_convolutions_options
    exp, _, _ = physics_train.make_experiment(load_preset("physics.configs", "mmnist_tiny"))
    assert exp.compiler_options is cpu_codegen.xla_convolutions_options

    for options, expected in ((cpu_codegen.XLA_CONVOLUTIONS_OPTION, True), ({}, False)):
        base, seen = _experiment(_config()), []

        def step(state, batch, key, base=base, seen=seen):
            seen.append(layers._XLA_KERNEL_GRADIENTS.get())
            return base.step(state, batch, key)

        exp = dataclasses.replace(base, step=step, compiler_options=lambda o=options: o)
        run(exp, _config(num_steps=2), tmp_path / str(expected))
        assert seen and all(s is expected for s in seen)
