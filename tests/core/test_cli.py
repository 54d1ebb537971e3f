"""Console scripts: --help, --list-presets, one-line errors with exit status 2."""

import csv
import importlib
import json
import logging
import os
import pathlib
import subprocess
import sys
import tomllib

import numpy as np
import pytest

from gantk.main import main as gantk_main
from generative.core import config as config_lib
from generative.core.cli import make_main


@pytest.mark.parametrize("module", ["gantk", "video", "physics", "generative"])
def test_help_and_presets(module, capsys):
    main = importlib.import_module(f"{module}.main").main
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--workdir" in out and "--seed" in out and "key=value" in out
    assert main(["--list-presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    presets = [line.split()[0] for line in lines]  # name, then the first docstring line
    assert presets == list(config_lib.list_presets(f"{module}.configs"))
    assert all(line.split(maxsplit=1)[1:] for line in lines)


@pytest.mark.parametrize(
    "args, match",
    [
        (["--config", "nope"], "unknown preset 'nope'; valid presets: "),
        (["bogus"], "unknown command 'bogus'; valid commands: flow"),
        (["flow", "nope=1"], "unknown config key 'nope'"),
        (["flow", "num_steps=x"], "expects int"),
        (["flow", "--seed", "x"], "invalid int value"),
        (
            ["flow", "kernel.architecture=tanh", "num_steps=1"],
            "config key 'kernel.architecture' must be one of the valid choices: relu, relu_nobias",
        ),
    ],
)
def test_wrong_arguments_one_line(tmp_path, capsys, args, match):
    code = gantk_main([*args, "--workdir", str(tmp_path / "w"), "progress=false"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and match in err and "Traceback" not in err


def test_gantk_flow_one_step_then_resume(tmp_path, capsys):
    argv = ["flow", "--workdir", str(tmp_path), "num_steps=1", "log_every=1", "checkpoint_every=1",
            "progress=false", "eval.figures=false", "data.n_particles=16", "data.n_targets=16"]  # fmt: skip
    assert gantk_main(argv) == 0
    out = capsys.readouterr().out
    assert out.endswith(f"results in {tmp_path.absolute()}\n") and "resumed" not in out
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [0, 1] and float(rows[1]["sinkhorn"]) > 0
    assert json.loads((tmp_path / "config.json").read_text())["data"]["n_particles"] == 16
    # the same command again: resumes from the step-1 checkpoint (printed), trains nothing
    assert gantk_main(argv) == 0
    out, err = capsys.readouterr()
    assert f"gantk: resumed from {tmp_path.absolute() / 'checkpoints' / '1'}\n" in out, out + err
    assert [int(r["step"]) for r in csv.DictReader((tmp_path / "metrics.csv").open())] == [0, 1]


def test_generative_metrics_prints_the_library_values(tmp_path, capsys):
    import jax

    from generative import metrics as m
    from generative.data.toy import sample_toy
    from generative.main import main

    assert main(["metrics", "n=64", "--seed", "3", "--workdir", str(tmp_path)]) == 0
    printed = dict(line.split() for line in capsys.readouterr().out.splitlines()[:3])
    assert set(printed) == {"sinkhorn", "exact_ot", "energy"}
    key = jax.random.PRNGKey(3)
    x = sample_toy("standard_normal", jax.random.fold_in(key, 1), 64)
    y = sample_toy("eight_gaussians", jax.random.fold_in(key, 2), 64)
    np.testing.assert_allclose(float(printed["exact_ot"]), m.exact_ot_cost(x, y), rtol=1e-5)
    np.testing.assert_allclose(float(printed["energy"]), m.energy_distance(x, y), rtol=1e-5)
    assert float(printed["sinkhorn"]) > 0


@pytest.mark.parametrize("module", ["gantk.main", "video.main", "physics.main", "generative.main"])
def test_every_command_resolves_to_a_function(module):
    """Commands given as "module:function" (imported when they run) name real functions."""
    import importlib

    from generative.core.cli import _resolve

    commands = importlib.import_module(module).COMMANDS
    assert commands
    for name, command in commands.items():
        assert callable(_resolve(command)), (module, name)


# (console script, argv, what the one line must say): invalid values of every package, each
# refused before the command starts (no import of the command, no file written).
BAD_VALUES = [
    ("gantk", ["table", "--steps", "-5"], "config key 'steps' must be a positive integer, got -5"),
    ("gantk", ["table", "--seeds", "0"], "config key 'seeds' must be a positive integer, got 0"),
    ("gantk", ["table", "workers=0"], "config key 'workers' must be a positive integer, got 0"),
    ("gantk", ["table", "losses=('ipm','gan')"], "'losses' must be a non-empty list, each one of the valid choices: inf_ipm, ipm"),
    ("gantk", ["flow", "--seed", "-1"], "config key 'seed' must be an integer >= 0, got -1"),
    ("gantk", ["flow", "data.n_particles=0"], "'data.n_particles' must be a positive integer"),
    ("gantk", ["flow", "optimizer.lr=0"], "'optimizer.lr' must be a finite number > 0, got 0.0"),
    ("gantk", ["flow", "loss.t=-1"], "'loss.t' must be a finite number > 0, got -1.0"),
    ("gantk", ["flow", "num_steps=-3"], "'num_steps' must be an integer >= 0, got -3"),
    ("gantk", ["flow", "log_every=0"], "'log_every' must be a positive integer, got 0"),
    ("gantk", ["flow", "dtype=float16"], "'dtype' must be one of the valid choices: float32, float64, got 'float16'"),
    ("gantk", ["flow", "generator.optimizer.b2=1.5"], "'generator.optimizer.b2' must be a number in [0, 1), got 1.5"),
    ("gantk", ["adequacy", "n_seeds=0"], "config key 'n_seeds' must be a positive integer, got 0"),
    ("gantk", ["adequacy", "widths=(64,0)"], "'widths' must be a non-empty list, each a positive integer, got (64, 0)"),
    ("gantk", ["adequacy", "optimizer.name=adam"], "'optimizer.name' must be one of the valid choices: sgd, got 'adam'"),
    ("gantk", ["field", "field.nx=1"], "'field.nx' must be an integer >= 2, got 1"),
    ("gantk", ["field", "pad_dim=1"], "'pad_dim' must be 0 (the plane itself) or an integer >= 2, got 1"),
    ("gantk", ["field", "field.x_range=(2,-2)"], "field.x_range must be two numbers (low, high) with low < high"),
    ("gantk", ["table", "--config", "demo"], "command 'table' reads config key(s) steps, seeds, workers"),
    ("video", ["train", "batch_size=0"], "config key 'batch_size' must be a positive integer, got 0"),
    ("video", ["train", "num_steps=-1"], "config key 'num_steps' must be an integer >= 0, got -1"),
    ("video", ["train", "optimizer.lr=-0.001"], "'optimizer.lr' must be a finite number > 0, got -0.001"),
    ("video", ["train", "optimizer.schedule=step"], "'optimizer.schedule' must be one of the valid choices: constant, constant_then_linear_decay, cosine, warmup_cosine"),
    ("video", ["train", "nt_cond=1"], "nt_cond (1) must be at least model.nt_inf (5)"),
    ("video", ["eval", "eval.n_samples=0"], "'eval.n_samples' must be a positive integer, got 0"),
    ("video", ["explore", "eval.horizon=-2"], "'eval.horizon' must be a positive integer, got -2"),
    ("video", ["train", "model.dynamics=lstm"], "'model.dynamics' must be one of the valid choices: residual, mlp, gru, got 'lstm'"),
    ("physics", ["train", "batch_size=0"], "config key 'batch_size' must be a positive integer, got 0"),
    ("physics", ["train", "optimizer.b1=1.0"], "'optimizer.b1' must be a number in [0, 1), got 1.0"),
    ("physics", ["train", "model.content_dim=3"], "model.mixing=mul needs model.content_dim (3) equal to model.dynamic_dim (32)"),
    ("physics", ["train", "num_train=300"], "num_train (300) must be smaller than num_sequences (300)"),
    ("physics", ["eval", "eval_batch=0"], "config key 'eval_batch' must be a positive integer, got 0"),
    ("physics", ["eval", "dynamics.dt=0"], "'dynamics.dt' must be a finite number > 0, got 0.0"),
    ("physics", ["aphynity", "aphynity.pendulum.steps=0"], "'aphynity.pendulum.steps' must be a positive integer, got 0"),
    ("physics", ["aphynity", "aphynity.methods=physics,gan"], "'aphynity.methods' must be a comma-separated list of: physics, data"),
    ("physics", ["aphynity", "--seed", "-4"], "config key 'seed' must be an integer >= 0, got -4"),
    ("physics", ["train", "--config", "aphynity"], "command 'train' reads config key(s) dataset, batch_size"),
    ("physics", ["discover", "discover.equations=burgers,heat"], "'discover.equations' must be a comma-separated list of: burgers, kdv, lorenz, pendulum"),
    ("physics", ["discover", "discover.noise=2"], "'discover.noise' must be a comma-separated list of noise levels in [0, 1)"),
    ("physics", ["environments", "environments.systems=lv,xx"], "'environments.systems' must be a comma-separated list of: lv, gs"),
    ("physics", ["environments", "environments.num_test=0"], "'environments.num_test' must be an integer >= 2, got 0"),
    ("physics", ["pinn", "pinn.derivatives=reverse"], "'pinn.derivatives' must be one of the valid choices: forward, taylor, got 'reverse'"),
    ("physics", ["pinn", "pinn.num_collocation=0"], "'pinn.num_collocation' must be a positive integer, got 0"),
    ("generative", ["metrics", "n=0"], "config key 'n' must be a positive integer, got 0"),
    ("generative", ["metrics", "sinkhorn_epsilon=0"], "'sinkhorn_epsilon' must be a finite number > 0, got 0.0"),
    ("generative", ["metrics", "source=cube"], "'source' must be one of the valid choices: eight_gaussians"),
    ("generative", ["train", "family=flow"], "config key 'family' must be one of the valid choices: gan, ali, got 'flow'"),
    ("generative", ["train", "loss=wasserstein"], "'loss' must be one of the valid choices: minimax, non_saturating, lsgan"),
    ("generative", ["train", "--config", "vae_digits", "model.decoder=poisson"], "'model.decoder' must be one of the valid choices: bernoulli, gaussian"),
    ("generative", ["train", "--config", "vae_cifar10", "data.data_dir=/nonexistent/tfds"], "CIFAR-10 is not prepared under /nonexistent/tfds"),
    ("generative", ["train", "--config", "gan_digits", "data.source=mnist", "data.data_dir=/nonexistent/tfds"], "MNIST is not prepared under /nonexistent/tfds"),
    ("generative", ["eval", "--config", "gan_grid"], "no checkpoint in runs/generative-eval-gan_grid/checkpoints; train first"),
    ("generative", ["table", "table.models=gan,wgan"], "'table.models' must be a comma-separated list of: gan, ali, wgan_gp, lsgan, hinge"),
    ("generative", ["likelihood", "likelihood.num=0"], "config key 'likelihood.num' must be a positive integer, got 0"),
    ("generative", ["likelihood"], "name runs to compare: likelihood.runs=DIR,... or likelihood.presets=P,..."),
]  # fmt: skip


@pytest.mark.parametrize("script, argv, match", BAD_VALUES)
def test_invalid_values_one_line_status_2_nothing_written(
    tmp_path, monkeypatch, capsys, script, argv, match
):
    monkeypatch.chdir(tmp_path)  # the default workdir, runs/..., would appear here
    main = importlib.import_module(f"{script}.main").main
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"{script}: error: "), err
    assert match in err and "Traceback" not in err, err
    assert out == ""
    assert list(tmp_path.iterdir()) == []


def test_every_console_script_has_invalid_value_cases():
    pyproject = pathlib.Path(__file__).parents[2] / "pyproject.toml"
    scripts = tomllib.loads(pyproject.read_text())["project"]["scripts"]
    assert {v.split(".")[0] for v in scripts.values()} == {s for s, _, _ in BAD_VALUES}
    for name, target in scripts.items():
        assert target == f"{name}.main:main"
        commands = importlib.import_module(f"{name}.main").COMMANDS
        tested = {argv[0] for s, argv, _ in BAD_VALUES if s == name}
        assert tested == set(commands), (name, set(commands) - tested)


def _toy_main(command, **kw):
    return make_main(
        "toy",
        {"go": command},
        configs_package="generative.configs",
        default_command="go",
        default_presets={"go": "toy_metrics"},
        **kw,
    )


def test_library_log_messages_are_printed_one_line_each(tmp_path, capsys):
    def command(config, workdir):
        logging.getLogger("generative.core.checkpoint").warning("step %d set aside", 20)
        logging.getLogger("generative.core.train").info("resumed from %s", "ckpt/10")
        logging.getLogger("generative.core.train").debug("not shown")

    assert _toy_main(command)(["--workdir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert err == "toy: step 20 set aside\n"
    assert out == f"toy: resumed from ckpt/10\nresults in {tmp_path.absolute()}\n"
    assert logging.getLogger("generative").handlers == []  # removed after the command


def test_command_checks_require_and_check_keys(tmp_path, capsys):
    from generative.core.config import POSITIVE_INT

    ran = []
    main = _toy_main(lambda c, w: ran.append(c.n), command_checks={"go": {"n": POSITIVE_INT}})
    assert main(["--workdir", str(tmp_path), "n=3"]) == 0 and ran == [3]
    capsys.readouterr()
    strict = _toy_main(lambda c, w: ran.append(c), command_checks={"go": {"width": POSITIVE_INT}})
    assert strict(["--workdir", str(tmp_path)]) == 2 and ran == [3]
    assert capsys.readouterr().err == (
        "toy: error: command 'go' reads config key(s) width, which preset 'toy_metrics' lacks; "
        "its default preset is 'toy_metrics' (see --help)\n"
    )
    with pytest.raises(ValueError, match="command_checks for unknown commands: stop"):
        _toy_main(lambda c, w: None, command_checks={"stop": {}})


def test_bad_vector_width_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GENERATIVE_CPU_VECTOR_WIDTH", "1024")
    ran = []
    assert _toy_main(lambda c, w: ran.append(c))(["--workdir", str(tmp_path)]) == 2
    assert ran == []
    assert capsys.readouterr().err == (
        "toy: error: GENERATIVE_CPU_VECTOR_WIDTH='1024' is not a valid choice; "
        "valid choices: auto, 256, 512\n"
    )


def test_importing_changes_no_global_state():
    """Importing the library (and the console-script modules) prints nothing and leaves
    os.environ, JAX's configuration and glibc's allocator alone: only `main()` and the test
    suite's conftest call `configure_host_memory`."""
    code = """
import os, sys
env = dict(os.environ)
import jax
flags = {k: getattr(jax.config, k) for k in ("jax_enable_x64", "jax_numpy_rank_promotion")}
import generative.core, generative.core.checkpoint, generative.core.cli, generative.core.config
import generative.core.host_memory, generative.core.metric_writers, generative.core.sharding
import generative.core.train, gantk.main, video.main, physics.main, generative.main
assert dict(os.environ) == env
assert {k: getattr(jax.config, k) for k in flags} == flags
assert generative.core.host_memory.host_memory_state()["reason"] == "not called"
import generative.core.cpu_codegen
assert generative.core.cpu_codegen.cpu_codegen_state()["reason"] == "not called"
sys.stderr.write("ok")
"""
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    assert r.returncode == 0 and r.stderr.endswith("ok"), r.stderr[-2000:]
    assert r.stdout == ""


def test_corrupt_checkpoints_through_the_command_line(tmp_path, capfd):
    import jax
    import jax.numpy as jnp

    from generative.core.checkpoint import Checkpointer

    state = {"w": jnp.arange(4.0), "m": jnp.ones((8, 8)), "n": jnp.zeros(3, jnp.int32)}
    ckpt = Checkpointer(tmp_path / "checkpoints")
    for step in (1, 2):
        ckpt.save(step, {k: a + step for k, a in state.items()})
    ckpt.close()

    def corrupt(step):
        for f in (tmp_path / "checkpoints" / str(step)).rglob("*"):
            if f.is_file() and f.parent.name == "d":
                f.write_bytes(b"garbage" * 9)

    def restore(config, workdir):
        c = Checkpointer(workdir / "checkpoints")
        got = c.restore(jax.eval_shape(lambda: state), set_aside=True)
        c.close()
        np.testing.assert_array_equal(got["m"], np.full((8, 8), 2.0))  # step 1's values

    main = _toy_main(restore)
    corrupt(2)
    capfd.readouterr()
    assert main(["--workdir", str(tmp_path)]) == 0
    out, err = capfd.readouterr()
    where = tmp_path / "checkpoints"
    assert err.count("\n") == 1 and err.startswith(f"toy: checkpoint {where / '2'} cannot be"), err
    assert err.endswith(f", moved to {where / 'unrestorable-2'}; restored step 1 instead\n")
    assert out == f"results in {tmp_path.absolute()}\n"
    corrupt(1)
    assert main(["--workdir", str(tmp_path)]) == 2
    out, err = capfd.readouterr()
    assert err.count("\n") == 1 and err.startswith(
        f"toy: error: none of the 1 checkpoints in {where} can be restored (newest, step 1: "
    ), err
