"""Named presets (ml_collections) with command-line overrides that always win.

A package keeps its presets as modules `<pkg>/configs/<preset>.py`, each with a
`get_config() -> ml_collections.ConfigDict`. `resolve` loads one, applies overrides such as
`optimizer.lr=1e-3` on top (never the other way round) and locks the result, so that an
unknown key or a wrong type stops the run with one line naming the valid choices.
"""

from __future__ import annotations

import ast
import importlib
import json
import pathlib
import pkgutil
from collections.abc import Sequence
from typing import Any

import ml_collections

__all__ = [
    "ConfigError",
    "base_config",
    "list_presets",
    "load_preset",
    "apply_overrides",
    "resolve",
    "save",
    "save_or_check",
    "to_dict",
]

# Keys that may differ between a run and its resumption (they do not change the result).
RESUMABLE_KEYS = ("num_steps", "progress")


class ConfigError(ValueError):
    """A user-facing configuration problem; its message is one line."""


def base_config() -> ml_collections.ConfigDict:
    """Common keys of every training run; presets extend this."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_steps = 1000
    c.log_every = 100
    c.checkpoint_every = 500  # a multiple of log_every
    c.keep_checkpoints = 3
    c.progress = True
    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.name = "adam"  # adam | adamw | sgd | rmsprop
    c.optimizer.lr = 1e-3
    c.optimizer.b1 = 0.9
    c.optimizer.b2 = 0.999
    c.optimizer.momentum = 0.0
    c.optimizer.weight_decay = 0.0
    # constant | constant_then_linear_decay | cosine | warmup_cosine
    c.optimizer.schedule = "constant"
    c.optimizer.decay_steps = 0  # linear decay length at the end (constant_then_linear_decay)
    c.optimizer.warmup_steps = 0
    c.optimizer.grad_clip = 0.0  # global-norm clip; 0 disables
    return c


def list_presets(configs_package: str) -> dict[str, str]:
    """Preset name -> first line of its module docstring.

    A preset module may define `VARIANTS` (a list of strings): it then provides the presets
    `module:variant`, built by `get_config(variant)` (big_vision's `config.py:arg` style).
    """
    pkg = importlib.import_module(configs_package)
    out = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{configs_package}.{info.name}")
        doc = (mod.__doc__ or "").strip().splitlines()
        variants = getattr(mod, "VARIANTS", None)
        if variants:
            for v in variants:
                out[f"{info.name}:{v}"] = doc[0] if doc else ""
        else:
            out[info.name] = doc[0] if doc else ""
    return out


def load_preset(configs_package: str, name: str) -> ml_collections.ConfigDict:
    presets = list_presets(configs_package)
    if name not in presets:
        raise ConfigError(f"unknown preset '{name}'; valid presets: {', '.join(presets)}")
    module, _, variant = name.partition(":")
    mod = importlib.import_module(f"{configs_package}.{module}")
    config = mod.get_config(variant) if variant else mod.get_config()
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(f"preset '{name}' must return an ml_collections.ConfigDict")
    return config


def _parse_value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _coerce(key: str, old: Any, new: Any) -> Any:
    """Convert `new` to the type of `old`, or raise a one-line ConfigError."""
    if old is None or new is None:
        return new
    kind = type(old)
    if kind is bool:
        if isinstance(new, bool):
            return new
    elif kind is int:
        if isinstance(new, int) and not isinstance(new, bool):
            return new
        if isinstance(new, float) and new.is_integer():
            return int(new)
    elif kind is float:
        if isinstance(new, (int, float)) and not isinstance(new, bool):
            return float(new)
    elif kind is str:
        return str(new)
    elif kind in (tuple, list):
        if isinstance(new, (tuple, list)):
            return kind(new)
        return kind([new])
    elif isinstance(new, kind):
        return new
    raise ConfigError(
        f"config key '{key}' expects {kind.__name__} (preset value {old!r}), got {new!r}"
    )


def apply_overrides(
    config: ml_collections.ConfigDict, overrides: Sequence[str]
) -> ml_collections.ConfigDict:
    """Apply `key.sub=value` strings on top of `config` (in place, returned)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value")
        key, text = item.split("=", 1)
        key = key.strip().lstrip("-")
        if key.startswith("config."):
            key = key[len("config.") :]
        parts = key.split(".")
        node = config
        for depth, part in enumerate(parts):
            valid = sorted(node.keys())
            if part not in node:
                where = ".".join(parts[:depth]) or "the top level"
                raise ConfigError(
                    f"unknown config key '{key}'; valid keys at {where}: {', '.join(valid)}"
                )
            if depth < len(parts) - 1:
                node = node[part]
                if not isinstance(node, ml_collections.ConfigDict):
                    raise ConfigError(
                        f"config key '{'.'.join(parts[: depth + 1])}' has no sub-keys"
                    )
        leaf = parts[-1]
        old = node[leaf]
        if isinstance(old, ml_collections.ConfigDict):
            raise ConfigError(
                f"config key '{key}' is a group; set one of its keys: {', '.join(sorted(old))}"
            )
        value = _coerce(key, old, _parse_value(text))
        with node.ignore_type():
            node[leaf] = value
    return config


def validate_common(config: ml_collections.ConfigDict) -> None:
    if "log_every" in config and "checkpoint_every" in config:
        if config.log_every <= 0:
            raise ConfigError(f"log_every must be positive, got {config.log_every}")
        if config.checkpoint_every <= 0 or config.checkpoint_every % config.log_every:
            raise ConfigError(
                f"checkpoint_every ({config.checkpoint_every}) must be a positive multiple "
                f"of log_every ({config.log_every})"
            )
    if "num_steps" in config and config.num_steps < 0:
        raise ConfigError(f"num_steps must be >= 0, got {config.num_steps}")


def resolve(
    configs_package: str,
    preset: str,
    overrides: Sequence[str] = (),
    seed: int | None = None,
) -> ml_collections.ConfigDict:
    """Preset, then overrides (which win), then `seed` if given; locked against new keys."""
    config = load_preset(configs_package, preset)
    apply_overrides(config, overrides)
    if seed is not None:
        if "seed" not in config:
            raise ConfigError(f"preset '{preset}' has no 'seed' key")
        config.seed = int(seed)
    validate_common(config)
    config.lock()
    return config


def to_dict(config: ml_collections.ConfigDict) -> dict:
    return json.loads(config.to_json_best_effort())


def save(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> None:
    """Write the resolved config to `workdir/config.json`."""
    path = pathlib.Path(workdir) / "config.json"
    path.write_text(json.dumps(to_dict(config), indent=2, sort_keys=True) + "\n")


def save_or_check(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> None:
    """Write `config.json` into the run folder; on resume, refuse a conflicting config."""
    path = pathlib.Path(workdir) / "config.json"
    new = to_dict(config)
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            old = None
        if old is not None:
            diff = _diff_keys(old, new)
            diff = [k for k in diff if k not in RESUMABLE_KEYS]
            if diff:
                raise ConfigError(
                    f"{workdir} holds a run with a different config (keys: {', '.join(diff)}); "
                    "use another --workdir or the same settings to resume"
                )
    save(config, workdir)


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]
