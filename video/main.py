"""Command line: ``video train|eval|explore --config PRESET --workdir DIR key=value ...``."""

from __future__ import annotations

from generative.core.cli import make_main


def _train(config, workdir):
    from video.train import train_and_evaluate

    train_and_evaluate(config, workdir)


def _eval(config, workdir):
    from video.train import evaluate

    evaluate(config, workdir)


def _explore(config, workdir):
    from video.train import explore

    explore(config, workdir)


COMMANDS = {"train": _train, "eval": _eval, "explore": _explore}

main = make_main(
    "video",
    COMMANDS,
    configs_package="video.configs",
    default_command="train",
    default_presets={"train": "smmnist_tiny", "eval": "smmnist_tiny", "explore": "smmnist_tiny"},
    description="Stochastic Latent Residual Video Prediction (SRVP)",
)

if __name__ == "__main__":
    raise SystemExit(main())
