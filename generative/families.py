"""Training and evaluation of the model families from presets (`generative train|eval`).

A preset names its family in `config.family`; the family's module provides
`make_experiment(config, workdir=None) -> generative.core.train.Experiment` (with a workdir,
its logging steps save sample snapshots there for the training animation) and
`evaluate_state(config, state, workdir) -> dict`. Training goes through the shared loop
(`generative.core.train.run`: resume, checkpoints, metrics.csv/TensorBoard, progress bar, stop
on the first non-finite value); evaluation restores the newest checkpoint of a run folder.
"""

from __future__ import annotations

import importlib
import json
import logging
import pathlib
from types import ModuleType

import jax
import ml_collections

__all__ = ["FAMILIES", "family_module", "train", "evaluate", "restore_state"]

logger = logging.getLogger(__name__)

FAMILIES = {
    "gan": "generative.gan",
    "ali": "generative.ali",
    "vae": "generative.vae",
    "vqvae": "generative.vqvae",
    "flow": "generative.flows",
    "diffusion": "generative.diffusion",
}


def family_module(name: str) -> ModuleType:
    """The module of a model family ('gan', 'ali', 'vae', 'vqvae')."""
    if name not in FAMILIES:
        raise ValueError(f"unknown model family '{name}'; valid: {', '.join(FAMILIES)}")
    return importlib.import_module(FAMILIES[name])


def train(config: ml_collections.ConfigDict, workdir) -> dict:
    """Train the preset's model in `workdir` (resuming it), then evaluate the final state."""
    from generative.core.train import run

    module = family_module(config.family)
    experiment = module.make_experiment(config, pathlib.Path(workdir))  # snapshots for the GIF
    run(experiment, config, workdir)
    return _read_eval(workdir)


def restore_state(config: ml_collections.ConfigDict, workdir):
    """(experiment, state) with the newest checkpoint that restores in `workdir`."""
    from generative.core.checkpoint import Checkpointer

    workdir = pathlib.Path(workdir)
    experiment = family_module(config.family).make_experiment(config)
    ckpt = Checkpointer(workdir / "checkpoints", keep=int(config.get("keep_checkpoints", 3)))
    try:
        if ckpt.latest_step() is None:
            raise FileNotFoundError(
                f"no checkpoint in {workdir / 'checkpoints'}; train first with "
                f"`generative train --config PRESET --workdir {workdir}`"
            )
        abstract = jax.eval_shape(experiment.init, jax.random.PRNGKey(int(config.seed)))
        state = ckpt.restore(abstract)
    finally:
        ckpt.close()
    return experiment, state


def evaluate(config: ml_collections.ConfigDict, workdir) -> dict:
    """Evaluate the newest checkpoint of a run folder; writes eval.json and figures there."""
    workdir = pathlib.Path(workdir)
    _, state = restore_state(config, workdir)
    metrics = family_module(config.family).evaluate_state(config, state, workdir)
    logger.info("step %d: %s", int(jax.device_get(state.step)), _summary(metrics))
    return metrics


def _summary(metrics: dict) -> str:
    parts = []
    for k, v in metrics.items():
        if isinstance(v, float | int):
            parts.append(f"{k}={v:.5g}")
    return " ".join(parts)


def _read_eval(workdir) -> dict:
    path = pathlib.Path(workdir) / "eval.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text())
