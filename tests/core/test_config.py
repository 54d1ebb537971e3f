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
    other = config_lib.resolve("gantk.configs", "demo", ["eta=4"])
    with pytest.raises(config_lib.ConfigError, match="different config .*eta"):
        config_lib.save_or_check(other, tmp_path)


def test_locked_config_rejects_new_keys():
    c = config_lib.resolve("gantk.configs", "demo")
    with pytest.raises(AttributeError):
        c.new_key = 1
    assert isinstance(c, ml_collections.ConfigDict)
