"""Shared machinery of every package: configs, training loop, checkpoints, sharding, CLI."""

from generative.core.config import ConfigError, base_config, resolve
from generative.core.train import (
    Experiment,
    NonFiniteError,
    TrainState,
    loss_step,
    make_optimizer,
    run,
)

__all__ = [
    "ConfigError",
    "Experiment",
    "NonFiniteError",
    "TrainState",
    "base_config",
    "loss_step",
    "make_optimizer",
    "resolve",
    "run",
]
