import fnmatch
import json

import ml_collections
import pytest

from generative.core import config as config_lib


def test_overrides_win_over_preset_and_are_typed():
    c = config_lib.resolve(
        "gantk.configs", "demo", ["eta=5", "kernel.architecture=relu_nobias", "eval.figures=false"]
    )
    assert c.eta == 5.0 and isinstance(c.eta, float)
    assert c.kernel.architecture == "relu_nobias"
    assert c.eval.figures is False
    assert config_lib.resolve("gantk.configs", "demo", seed=7).seed == 7
    # a comma-separated string key given numbers (parsed as a tuple) stays that string
    c = config_lib.resolve("physics.configs", "discover_tiny", ["discover.noise=0,0.01"])
    assert c.discover.noise == "0,0.01"


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["nope=1"], "unknown config key 'nope'; valid keys at the top level: .*checkpoint_every"),
        (
            ["kernel.nope=1"],
            "unknown config key 'kernel.nope'; valid keys at kernel: .*architecture",
        ),
        (["num_steps=abc"], "config key 'num_steps' expects int"),
        (["eval.figures=3"], "config key 'eval.figures' expects bool"),
        (["kernel=3"], "is a group"),
        (["num_steps"], "not of the form key=value"),
        (["checkpoint_every=7"], "multiple of log_every"),
    ],
)
def test_bad_overrides_one_line(overrides, match):
    with pytest.raises(config_lib.ConfigError, match=match) as e:
        config_lib.resolve("gantk.configs", "demo", overrides)
    assert "\n" not in str(e.value)


def test_unknown_preset_lists_valid_ones():
    with pytest.raises(
        config_lib.ConfigError, match="unknown preset 'nope'; valid presets: .*demo"
    ):
        config_lib.resolve("gantk.configs", "nope")


def test_resolved_config_written_and_conflicts_refused(tmp_path):
    c = config_lib.resolve("gantk.configs", "demo", ["eta=3"])
    config_lib.save_or_check(c, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["eta"] == 3.0
    longer = config_lib.resolve("gantk.configs", "demo", ["eta=3", "num_steps=99999"])
    config_lib.save_or_check(longer, tmp_path)  # num_steps may change on resume
    logged = config_lib.resolve(
        "gantk.configs", "demo", ["eta=3", "log_every=7", "checkpoint_every=14"]
    )
    config_lib.save_or_check(logged, tmp_path)  # so may what is logged and kept
    other = config_lib.resolve("gantk.configs", "demo", ["eta=4"])
    with pytest.raises(config_lib.ConfigError, match="different config .*eta"):
        config_lib.save_or_check(other, tmp_path)


def test_locked_config_rejects_new_keys():
    c = config_lib.resolve("gantk.configs", "demo")
    with pytest.raises(AttributeError):
        c.new_key = 1
    assert isinstance(c, ml_collections.ConfigDict)


@pytest.mark.parametrize(
    "check, good, bad",
    [
        (config_lib.POSITIVE_INT, [1, 7], [0, -1, 1.0, True, "3", None]),
        (config_lib.NON_NEGATIVE_INT, [0, 5], [-1, 0.5, False]),
        (config_lib.POSITIVE, [1e-9, 3, 2.5], [0, -1e-9, float("nan"), float("inf"), True]),
        (config_lib.NON_NEGATIVE, [0, 0.0, 4], [-0.1, float("nan")]),
        (config_lib.PROBABILITY, [0, 0.5, 1], [-0.01, 1.01]),
        (config_lib.FINITE, [-3, 0.0, 2], [float("-inf"), "1"]),
        (config_lib.at_least(2, integer=True), [2, 9], [1, 2.5]),
        (config_lib.interval(0, 1, high_open=True), [0, 0.999], [1, -0.1]),
        (config_lib.interval(0, 1, low_open=True), [1, 1e-6], [0]),
        (config_lib.one_of("a", "b"), ["a", "b"], ["c", "", None]),
        (config_lib.each(config_lib.POSITIVE_INT), [(1,), [2, 3]], [(), (1, 0), 3]),
        (config_lib.each(config_lib.POSITIVE_INT, min_len=0), [()], [(0,)]),
        (config_lib.comma_list("x", "y"), ["x", "x,y", " y , x"], ["", "x,z", "x,", 1]),
    ],
)
def test_checks_accept_and_refuse(check, good, bad):
    assert all(check.accepts(v) for v in good), [v for v in good if not check.accepts(v)]
    assert not any(check.accepts(v) for v in bad), [v for v in bad if check.accepts(v)]


def test_check_config_message_patterns_and_cross_checks():
    c = ml_collections.ConfigDict({"a": {"opt": {"lr": 0.1}}, "opt": {"lr": -2.0}, "n": 3})
    checks = {"*opt.lr": config_lib.POSITIVE}
    with pytest.raises(config_lib.ConfigError) as e:
        config_lib.check_config(c, checks)
    assert str(e.value) == "config key 'opt.lr' must be a finite number > 0, got -2.0"
    c.opt.lr = 2.0
    config_lib.check_config(c, {**checks, "absent.key": config_lib.POSITIVE_INT})
    cross = [lambda c: c.missing.key, lambda c: None if c.n < 2 else f"n ({c.n})\n  too big"]
    with pytest.raises(config_lib.ConfigError, match=r"^n \(3\) too big$"):
        config_lib.check_config(c, checks, cross)


PACKAGES = ["gantk.configs", "video.configs", "physics.configs", "generative.configs"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_preset_passes_its_checks_and_every_check_names_a_key(package):
    checks, _ = config_lib.package_checks(package)
    used = set()
    for preset in config_lib.list_presets(package):
        c = config_lib.resolve(package, preset)  # raises if a preset's own value is refused
        keys = [k for k, _ in config_lib._leaves(c)]
        used |= {p for p in checks if any(fnmatch.fnmatchcase(k, p) for k in keys)}
    common = set(config_lib.COMMON_CHECKS)
    own = set(checks) - common
    assert own - used == set()  # a pattern no preset has is a typo


def test_check_choices_equal_the_library_lists():
    import gantk.configs as g
    import physics.configs as p
    import video.configs as v
    from gantk import dynamics, flow, kernels
    from gantk.configs import paper
    from generative import nets
    from generative.configs import TOY_DATASETS
    from generative.data import toy
    from physics import aphynity, data, discovery
    from physics import separation as model
    from video import srvp as video_model
    from video import train as video_train

    assert g.FLOW_DATASETS == flow.DATASETS and g.LOSSES == dynamics.LOSSES
    assert g.METHODS == dynamics.METHODS and g.ARCHITECTURES == tuple(kernels.ARCHITECTURES)
    assert v.DATASETS == video_train.DATASETS and v.ARCHITECTURES == video_model.ARCHITECTURES
    assert v.DYNAMICS == video_model.DYNAMICS
    assert p.DATASETS == data.DATASETS and p.ENCODERS == model.ENCODERS
    assert p.DECODERS == model.DECODERS and p.ADJOINTS == model.ADJOINTS
    assert p.ACTIVATIONS == tuple(nets.ACTIVATIONS)
    assert p.APHYNITY_DATASETS == aphynity.DATASETS and p.APHYNITY_METHODS == aphynity.METHODS
    assert p.DISCOVER_EQUATIONS == discovery.EQUATIONS and p.DISCOVER_METHODS == discovery.METHODS
    assert TOY_DATASETS == tuple(toy.TOY_DATASETS)
    assert (g.TABLE_DATASETS, g.TABLE_LOSSES, g.TABLE_KERNELS) == (
        paper.DATASETS,
        paper.LOSSES,
        paper.KERNELS,
    )
