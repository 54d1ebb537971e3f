"""Command line: ``video train|eval|explore --config PRESET --workdir DIR key=value ...``."""

from __future__ import annotations

from generative.core.cli import make_main

COMMANDS = {
    "train": "video.train:train_and_evaluate",
    "eval": "video.train:evaluate",
    "explore": "video.train:explore",
}

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
