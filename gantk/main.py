"""`gantk` console script: GAN training dynamics under infinite-width NTK discriminators.

gantk flow --config demo --workdir runs/demo      # the README's `make demo`
gantk --list-presets
"""

from __future__ import annotations

import pathlib

import jax
import ml_collections

from gantk import configs
from generative.core.cli import make_main
from generative.core.config import each, one_of, package_checks
from generative.core.train import run


def _set_precision(config: ml_collections.ConfigDict) -> None:
    if config.dtype not in ("float32", "float64"):
        raise ValueError(f"unknown dtype '{config.dtype}'; valid: float32, float64")
    jax.config.update("jax_enable_x64", config.dtype == "float64")


def flow(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> None:
    """Particle flow of the generated distribution under the exact discriminator."""
    from gantk.flow import make_flow

    _set_precision(config)
    particle_flow = make_flow(config)
    run(particle_flow.experiment(workdir), config, workdir)
    for name in ("metrics.csv", "final.png", "flow.gif"):
        if (workdir / name).exists():
            print(f"wrote {workdir / name}")


def adequacy(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> None:
    """Paper Fig. 1: finite widths trained with SGD against the infinite-width discriminator."""
    from gantk.adequacy import run_adequacy

    _set_precision(config)
    run_adequacy(config, workdir)


def field(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> None:
    """Paper Figs. 6-7: gradient field of a single-fake / single-real discriminator."""
    from gantk.field import run_field

    _set_precision(config)
    run_field(config, workdir)


def table(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> None:
    """The paper's comparison grid (one flow process per cell and seed)."""
    from gantk.table import run_table

    run_table(config, workdir)


COMMANDS = {"flow": flow, "adequacy": adequacy, "field": field, "table": table}

# Keys each command reads: a preset of another command is refused in one line.
_CHECKS = {
    **package_checks("gantk.configs")[0],
    "datasets": each(one_of(*configs.TABLE_DATASETS)),
    "losses": each(one_of(*configs.TABLE_LOSSES)),
    "kernels": each(one_of(*configs.TABLE_KERNELS)),
}
_COMMAND_KEYS = {
    "flow": ("dtype", "num_steps", "data.name", "loss.name", "kernel.architecture", "eta"),
    "adequacy": ("dtype", "widths", "n_seeds", "loss.names", "data.dim", "plot.grid_size"),
    "field": ("dtype", "pad_dim", "loss.name", "field.nx", "field.ny", "field.real"),
    "table": ("steps", "seeds", "workers", "log_every", "datasets", "losses", "kernels"),
}

main = make_main(
    "gantk",
    COMMANDS,
    configs_package="gantk.configs",
    default_command="flow",
    default_presets={
        "flow": "demo",
        "adequacy": "adequacy_1d",
        "field": "field:relu",
        "table": "table",
    },
    description="GAN training dynamics through the infinite-width discriminator's NTK.",
    command_checks={
        command: {k: _CHECKS[k] for k in keys} for command, keys in _COMMAND_KEYS.items()
    },
)
