"""`generative` console script: train, evaluate and compare the model families.

generative train --config gan_grid            # any preset: generative --list-presets
generative eval  --config gan_grid --workdir runs/generative-train-gan_grid
generative table --config modes               # the mode-coverage study
generative metrics --config toy_metrics       # distances between two toy distributions
generative likelihood likelihood.runs=runs/a,runs/b   # test NLL table of trained runs
"""

from __future__ import annotations

import logging
import pathlib

import ml_collections

from generative.core.cli import make_main
from generative.core.config import package_checks

logger = logging.getLogger("generative.main")


def metrics(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> None:
    """Distances between two toy distributions (a quick check of the metric stack)."""
    import jax

    from generative import metrics as m
    from generative.data.toy import sample_toy

    key = jax.random.PRNGKey(config.seed)
    x = sample_toy(config.source, jax.random.fold_in(key, 1), config.n)
    y = sample_toy(config.target, jax.random.fold_in(key, 2), config.n)
    workdir.mkdir(parents=True, exist_ok=True)
    out = {
        "sinkhorn": float(m.sinkhorn_divergence(x, y, config.sinkhorn_epsilon)),
        "exact_ot": m.exact_ot_cost(x, y),
        "energy": float(m.energy_distance(x, y)),
    }
    for k, v in out.items():
        print(f"{k:10s} {v:.6g}")


COMMANDS = {
    "train": "generative.families:train",
    "eval": "generative.families:evaluate",
    "table": "generative.modes:run_table",
    "metrics": metrics,
    "likelihood": "generative.likelihood:run_table",
}

_CHECKS, _ = package_checks("generative.configs")
_COMMAND_KEYS = {
    "train": ("family",),
    "eval": ("family",),
    "table": ("table.models", "table.datasets", "table.protocols", "table.seeds"),
    "metrics": ("source", "target", "n"),
    "likelihood": ("likelihood.runs", "likelihood.presets", "likelihood.num"),
}

main = make_main(
    "generative",
    COMMANDS,
    configs_package="generative.configs",
    default_command="train",
    default_presets={
        "train": "gan_grid",
        "eval": "gan_grid",
        "table": "modes",
        "metrics": "toy_metrics",
        "likelihood": "likelihood",
    },
    description="Generative-model families (GAN, ALI, VAE, VQ-VAE, diffusion), toy data, metrics.",
    command_checks={c: {k: _CHECKS[k] for k in keys} for c, keys in _COMMAND_KEYS.items()},
)

if __name__ == "__main__":
    raise SystemExit(main())
