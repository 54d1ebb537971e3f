"""Command line: ``physics train|eval|aphynity --config PRESET --workdir DIR key=value ...``."""

from __future__ import annotations

from generative.core.cli import make_main

COMMANDS = {
    "train": "physics.train:train_and_evaluate",
    "eval": "physics.train:evaluate",
    "aphynity": "physics.aphynity:run_benchmark",
}

main = make_main(
    "physics",
    COMMANDS,
    configs_package="physics.configs",
    default_command="train",
    default_presets={"train": "waveeq", "eval": "waveeq", "aphynity": "aphynity"},
    description="PDE-driven spatiotemporal disentanglement and APHYNITY",
)

if __name__ == "__main__":
    raise SystemExit(main())
