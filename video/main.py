"""Command line: ``video train|eval|explore --config PRESET --workdir DIR key=value ...``."""

from __future__ import annotations

from generative.core.cli import make_main
from generative.core.config import package_checks

COMMANDS = {
    "train": "video.train:train_and_evaluate",
    "eval": "video.train:evaluate",
    "explore": "video.train:explore",
}

# Keys every command reads (all presets have them; a hand-written one is checked).
_CHECKS, _ = package_checks("video.configs")
_KEYS = ("dataset", "seq_len", "nt_cond", "batch_size", "eval.horizon", "eval.n_samples")

main = make_main(
    "video",
    COMMANDS,
    configs_package="video.configs",
    default_command="train",
    default_presets={"train": "smmnist_tiny", "eval": "smmnist_tiny", "explore": "smmnist_tiny"},
    description="Stochastic Latent Residual Video Prediction (SRVP)",
    command_checks={c: {k: _CHECKS[k] for k in _KEYS} for c in COMMANDS},
)

if __name__ == "__main__":
    raise SystemExit(main())
