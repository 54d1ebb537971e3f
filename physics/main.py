"""Command line: ``physics train|eval|aphynity --config PRESET --workdir DIR key=value ...``."""

from __future__ import annotations

from generative.core.cli import make_main


def _train(config, workdir):
    from physics.train import train_and_evaluate

    train_and_evaluate(config, workdir)


def _eval(config, workdir):
    from physics.train import evaluate

    evaluate(config, workdir)


def _aphynity(config, workdir):
    from physics.aphynity import run_benchmark

    run_benchmark(config, workdir)


COMMANDS = {"train": _train, "eval": _eval, "aphynity": _aphynity}

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
