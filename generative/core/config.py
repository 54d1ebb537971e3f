"""Named presets (ml_collections) with command-line overrides that always win.

A package keeps its presets as modules `<pkg>/configs/<preset>.py`, each with a
`get_config() -> ml_collections.ConfigDict`. `resolve` loads one, applies overrides such as
`optimizer.lr=1e-3` on top (never the other way round) and locks the result, so that an
unknown key or a wrong type stops the run with one line naming the valid choices.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib
import json
import math
import numbers
import pathlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import ml_collections

__all__ = [
    "ConfigError",
    "Check",
    "COMMON_CHECKS",
    "OPTIMIZERS",
    "SCHEDULES",
    "POSITIVE_INT",
    "NON_NEGATIVE_INT",
    "POSITIVE",
    "NON_NEGATIVE",
    "FINITE",
    "PROBABILITY",
    "NON_EMPTY",
    "at_least",
    "interval",
    "one_of",
    "each",
    "comma_list",
    "check_config",
    "package_checks",
    "base_config",
    "list_presets",
    "load_preset",
    "apply_overrides",
    "resolve",
    "save",
    "save_or_check",
    "to_dict",
]

# Keys that may differ between a run and its resumption: the run length and what is logged or
# kept, not the maths.
RESUMABLE_KEYS = ("num_steps", "progress", "log_every", "checkpoint_every", "keep_checkpoints")

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "constant_then_linear_decay", "cosine", "warmup_cosine")


class ConfigError(ValueError):
    """A user-facing configuration problem; its message is one line."""


# ----------------------------------------------------------------------------- value checks


class Check(NamedTuple):
    """A declarative constraint on one config value.

    accepts: value -> bool.  valid: what is accepted, in words ("a positive integer"); the
    error reads "config key 'KEY' must be VALID, got VALUE".
    """

    accepts: Callable[[Any], bool]
    valid: str


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


FINITE = Check(_is_real, "a finite number")
POSITIVE_INT = Check(lambda v: _is_int(v) and v > 0, "a positive integer")
NON_NEGATIVE_INT = Check(lambda v: _is_int(v) and v >= 0, "an integer >= 0")
POSITIVE = Check(lambda v: _is_real(v) and v > 0, "a finite number > 0")
NON_NEGATIVE = Check(lambda v: _is_real(v) and v >= 0, "a finite number >= 0")
PROBABILITY = Check(lambda v: _is_real(v) and 0 <= v <= 1, "a number in [0, 1]")
NON_EMPTY = Check(lambda v: isinstance(v, str) and bool(v.strip()), "a non-empty string")


def at_least(low: float, *, integer: bool = False) -> Check:
    """An integer (or finite number) >= `low`."""
    kind = _is_int if integer else _is_real
    return Check(
        lambda v: kind(v) and v >= low, f"{'an integer' if integer else 'a number'} >= {low:g}"
    )


def interval(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Check:
    """A finite number in the interval [low, high], either end open on request."""

    def accepts(v):
        if not _is_real(v):
            return False
        return (v > low if low_open else v >= low) and (v < high if high_open else v <= high)

    brackets = ("(" if low_open else "[", ")" if high_open else "]")
    return Check(accepts, f"a number in {brackets[0]}{low:g}, {high:g}{brackets[1]}")


def one_of(*choices: Any) -> Check:
    """One of `choices` (compared with ==)."""
    return Check(
        lambda v: v in choices, "one of the valid choices: " + ", ".join(map(str, choices))
    )


def each(check: Check, *, min_len: int = 1) -> Check:
    """A list/tuple of at least `min_len` items, each accepted by `check`."""

    def accepts(v):
        return (
            isinstance(v, (list, tuple)) and len(v) >= min_len and all(check.accepts(x) for x in v)
        )

    size = f"at least {min_len} " if min_len > 1 else "non-empty " if min_len == 1 else ""
    return Check(accepts, f"a {size}list, each {check.valid}")


def comma_list(*choices: str) -> Check:
    """A string "a,b,..." of at least one name, each one of `choices`."""

    def accepts(v):
        names = [x.strip() for x in v.split(",")] if isinstance(v, str) else []
        return bool(names) and all(x in choices for x in names)

    return Check(accepts, "a comma-separated list of: " + ", ".join(choices))


CrossCheck = Callable[[Any], "str | None"]


def _checkpoint_every_multiple_of_log_every(c) -> str | None:
    if c.checkpoint_every % c.log_every:
        return (
            f"checkpoint_every ({c.checkpoint_every}) must be a positive multiple "
            f"of log_every ({c.log_every})"
        )
    return None


def _warmup_shorter_than_run(c) -> str | None:
    o = c.optimizer
    if o.schedule == "warmup_cosine" and c.num_steps > 0 and o.warmup_steps >= c.num_steps:
        return (
            f"optimizer.warmup_steps ({o.warmup_steps}) must be smaller than num_steps "
            f"({c.num_steps}) with the warmup_cosine schedule"
        )
    return None


# Checks of the keys of `base_config()`, wherever a preset has them. A pattern is matched
# against the dotted path of every leaf ("*optimizer.lr" also covers "generator.optimizer.lr").
COMMON_CHECKS: dict[str, Check] = {
    "seed": NON_NEGATIVE_INT,
    "num_steps": NON_NEGATIVE_INT,
    "log_every": POSITIVE_INT,
    "checkpoint_every": POSITIVE_INT,
    "keep_checkpoints": POSITIVE_INT,
    "*optimizer.name": one_of(*OPTIMIZERS),
    "*optimizer.lr": POSITIVE,
    "*optimizer.b1": interval(0, 1, high_open=True),
    "*optimizer.b2": interval(0, 1, high_open=True),
    "*optimizer.momentum": interval(0, 1, high_open=True),
    "*optimizer.weight_decay": NON_NEGATIVE,
    "*optimizer.schedule": one_of(*SCHEDULES),
    "*optimizer.decay_steps": NON_NEGATIVE_INT,
    "*optimizer.warmup_steps": NON_NEGATIVE_INT,
    "*optimizer.grad_clip": NON_NEGATIVE,
}


def _weight_decay_needs_adamw(c) -> str | None:
    o = c.optimizer
    if o.weight_decay and o.name != "adamw":
        return (
            f"optimizer.weight_decay ({o.weight_decay}) applies to optimizer.name=adamw only, "
            f"got optimizer.name={o.name}"
        )
    return None


COMMON_CROSS_CHECKS: tuple[CrossCheck, ...] = (
    _checkpoint_every_multiple_of_log_every,
    _warmup_shorter_than_run,
    _weight_decay_needs_adamw,
)


def _leaves(config: ml_collections.ConfigDict, prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key in config.keys():
        value = config[key]
        if isinstance(value, ml_collections.ConfigDict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def check_config(
    config: ml_collections.ConfigDict,
    checks: Mapping[str, Check],
    cross_checks: Sequence[CrossCheck] = (),
) -> None:
    """Raise a one-line ConfigError for the first value a check refuses.

    checks: pattern -> Check; a pattern (`fnmatch` syntax) is matched against the dotted path
    of every leaf of `config`; patterns that match no key are ignored (presets differ).
    cross_checks: functions `config -> message or None` relating several keys; one that
    reads a key the config lacks (AttributeError/KeyError) does not apply to it.
    """
    for key, value in _leaves(config):
        for pattern, check in checks.items():
            if fnmatch.fnmatchcase(key, pattern) and not check.accepts(value):
                raise ConfigError(f"config key '{key}' must be {check.valid}, got {value!r}")
    for cross in cross_checks:
        try:
            message = cross(config)
        except (AttributeError, KeyError):
            continue
        if message:
            raise ConfigError(" ".join(str(message).split()))


def package_checks(
    configs_package: str, preset: str | None = None
) -> tuple[dict[str, Check], tuple[CrossCheck, ...]]:
    """`COMMON_CHECKS` updated by the `CHECKS` dict of `<configs_package>/__init__.py`, then by
    the `CHECKS` of the preset's module (a later entry with the same pattern replaces an
    earlier one); the cross checks of all three (`CROSS_CHECKS` sequences) after each other."""
    modules = [importlib.import_module(configs_package)]
    if preset:
        module = preset.partition(":")[0]
        modules.append(importlib.import_module(f"{configs_package}.{module}"))
    checks, cross = dict(COMMON_CHECKS), list(COMMON_CROSS_CHECKS)
    for mod in modules:
        checks.update(getattr(mod, "CHECKS", {}))
        cross.extend(getattr(mod, "CROSS_CHECKS", ()))
    return checks, tuple(cross)


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
        if isinstance(new, (tuple, list)):  # "a,b" typed for a comma-separated string key
            return ",".join(str(v) for v in new)
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


def resolve(
    configs_package: str,
    preset: str,
    overrides: Sequence[str] = (),
    seed: int | None = None,
) -> ml_collections.ConfigDict:
    """Preset, then overrides (which win), then `seed` if given; every value checked (see
    `package_checks`); locked against new keys."""
    config = load_preset(configs_package, preset)
    apply_overrides(config, overrides)
    if seed is not None:
        if "seed" not in config:
            raise ConfigError(f"preset '{preset}' has no 'seed' key")
        config.seed = int(seed)
    checks, cross_checks = package_checks(configs_package, preset)
    check_config(config, checks, cross_checks)
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
