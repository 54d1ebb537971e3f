"""`generative` console script (model families; commands are added as they land)."""

from __future__ import annotations

import pathlib

import ml_collections

from generative.core.cli import make_main


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


COMMANDS = {"metrics": metrics}

main = make_main(
    "generative",
    COMMANDS,
    configs_package="generative.configs",
    default_command="metrics",
    default_presets={"metrics": "toy_metrics"},
    description="Generative-model families, toy data and distribution metrics.",
)
