"""Shared networks: the parameter trees every preset had before they were shared (recorded in
tests/data/param_trees.json), nearest upsampling, layer naming and bad input."""

import importlib
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from generative import nets

RECORDED = json.loads((pathlib.Path(__file__).parents[1] / "data/param_trees.json").read_text())

# frame shape of each physics data set (WaveEq: the preset's grid)
_PHYSICS_FRAMES = {
    "waveeq100": (100,),
    "sst": (64, 64, 1),
    "taxibj": (32, 32, 2),
    "chairs": (64, 64, 3),
    "mmnist": (64, 64, 1),
}


def _tree(variables) -> dict:
    flat = jax.tree_util.tree_flatten_with_path(variables)[0]
    return {jax.tree_util.keystr(p): list(x.shape) for p, x in flat}


def _preset_tree(name: str) -> dict:
    package, preset = name.split("/")
    cfg = importlib.import_module(f"{package}.configs.{preset}").get_config()
    key = jax.random.PRNGKey(0)
    if package == "video":
        from video import srvp, train

        return _tree(jax.eval_shape(lambda k: srvp.init_variables(train.model_config(cfg), k), key))
    from physics.train import build_model

    frame = _PHYSICS_FRAMES.get(cfg.dataset) or (cfg.grid_size, cfg.grid_size, 1)
    model = build_model(cfg, frame)
    window = jnp.zeros((2, cfg.cond_frames) + tuple(frame))
    return _tree(jax.eval_shape(lambda k: model.init(k, window), key))


def _net_tree(name: str) -> dict:
    from physics.train import build_decoder, build_encoder

    _, arch_size, part = name.split("/")
    arch, size = arch_size[:-2], int(arch_size[-2:])
    key = jax.random.PRNGKey(0)
    if part == "encoder":
        net, x = build_encoder(arch, 10, nf=8), jnp.zeros((2, size, size, 6))
    else:
        net, x = build_decoder(arch, (size, size, 3), nf=8), jnp.zeros((2, 20))
    return _tree(jax.eval_shape(lambda k: net.init(k, x), key))


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_parameter_trees_are_unchanged(name):
    tree = _net_tree(name) if name.startswith("physics-nets/") else _preset_tree(name)
    assert tree == RECORDED[name]


def test_vgg_decoder_upsampling_is_nearest_neighbour():
    """The decoder's ×2 upsampling equals jax.image.resize's nearest mode."""
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 5, 4))
    ours = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    ref = jax.image.resize(x, (2, 6, 10, 4), "nearest")
    np.testing.assert_array_equal(ours, ref)


def test_mlp_values_and_names():
    mlp = nets.MLP([5, 3], activation="tanh", layer_names="dense{}")
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 2))
    params = mlp.init(jax.random.PRNGKey(2), x)["params"]
    assert sorted(params) == ["dense0", "dense1"]
    w0, b0 = np.asarray(params["dense0"]["kernel"]), np.asarray(params["dense0"]["bias"])
    w1, b1 = np.asarray(params["dense1"]["kernel"]), np.asarray(params["dense1"]["bias"])
    expect = np.tanh(np.asarray(x) @ w0 + b0) @ w1 + b1
    np.testing.assert_allclose(mlp.apply({"params": params}, x), expect, rtol=1e-5, atol=1e-6)


def test_encoder_skips_and_group_norm_statelessness():
    enc = nets.DCGANEncoder(6, nf=4, norm="group", skips=True)
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 16, 16, 1))
    variables = enc.init(jax.random.PRNGKey(1), x)
    assert set(variables) == {"params"}  # group norm keeps no state
    code, skips = enc.apply(variables, x)
    assert code.shape == (2, 6) and float(jnp.max(jnp.abs(code))) < 1.0
    assert [s.shape for s in skips] == [(2, 8, 8, 4), (2, 4, 4, 8)]


@pytest.mark.parametrize(
    "make, arg, match",
    [
        (lambda: nets.DCGANEncoder(4), jnp.zeros((1, 24, 24, 1)), "power-of-two side"),
        (lambda: nets.VGGEncoder(4), jnp.zeros((1, 16, 8, 1)), "square frames"),
        (lambda: nets.DCGANEncoder(4, norm="layer"), jnp.zeros((1, 16, 16, 1)), "'batch', 'group'"),
        (
            lambda: nets.DCGANDecoder((16, 16, 1), output_activation="relu"),
            jnp.zeros((1, 4)),
            "'sigmoid'",
        ),
        (lambda: nets.VGGEncoder(4, blocks=(2, 2, 3, 3)), jnp.zeros((1, 16, 16, 1)), "needs 64×64"),
        (lambda: nets.MLP([3], activation="gelu"), jnp.zeros((1, 2)), "valid choices"),
    ],
)
def test_bad_input_is_one_line(make, arg, match):
    with pytest.raises(ValueError, match=match) as err:
        make().init(jax.random.PRNGKey(0), arg)
    assert "\n" not in str(err.value)


def test_batch_norm_running_mean_follows_momentum():
    """SRVP's batch norm: running mean ← 0.9 · running mean + 0.1 · batch mean (training only)."""
    enc = nets.DCGANEncoder(3, nf=2, norm="batch", norm_code=True)
    x = jax.random.uniform(jax.random.PRNGKey(0), (4, 8, 8, 1))
    v = enc.init(jax.random.PRNGKey(1), x)
    (_, state) = enc.apply(
        v, x, train=True, mutable=["batch_stats", "intermediates"], capture_intermediates=True
    )
    code_conv = state["intermediates"]["Conv_1"]["__call__"][0]  # [4, 1, 1, 3], before its norm
    expect = 0.1 * np.asarray(code_conv).mean(axis=(0, 1, 2))
    np.testing.assert_allclose(state["batch_stats"]["BatchNorm_0"]["mean"], expect, rtol=1e-5)
    _, unchanged = enc.apply(v, x, train=False, mutable=["batch_stats"])
    np.testing.assert_array_equal(unchanged["batch_stats"]["BatchNorm_0"]["mean"], np.zeros(3))
