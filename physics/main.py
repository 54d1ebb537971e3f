"""Command line: ``physics train|eval|aphynity|discover|environments|pinn --config PRESET --workdir DIR key=value ...``."""

from __future__ import annotations

from generative.core.cli import make_main
from generative.core.config import package_checks

COMMANDS = {
    "train": "physics.train:train_and_evaluate",
    "eval": "physics.train:evaluate",
    "aphynity": "physics.aphynity:run_benchmark",
    "discover": "physics.discovery:run",
    "environments": "physics.environments:run_benchmark",
    "pinn": "physics.pinn:run_pinn",
}

# Keys each command reads: a preset of another command is refused in one line.
_CHECKS, _ = package_checks("physics.configs")
_SEPARATION_KEYS = ("dataset", "batch_size", "cond_frames", "pred_frames", "model.encoder")
_COMMAND_KEYS = {
    "train": _SEPARATION_KEYS,
    "eval": _SEPARATION_KEYS,
    "aphynity": ("aphynity.datasets", "aphynity.methods", "aphynity.num_train"),
    "discover": ("discover.equations", "discover.methods", "discover.noise"),
    "environments": ("environments.systems", "environments.methods", "environments.num_test"),
    "pinn": ("pinn.nu", "pinn.num_collocation", "pinn.derivatives", "pinn.lbfgs_steps"),
}

main = make_main(
    "physics",
    COMMANDS,
    configs_package="physics.configs",
    default_command="train",
    default_presets={
        "train": "waveeq",
        "eval": "waveeq",
        "aphynity": "aphynity",
        "discover": "discover",
        "environments": "environments",
        "pinn": "pinn",
    },
    description="PDE-driven spatiotemporal disentanglement, APHYNITY, equation discovery, "
    "learning across environments and PINNs",
    command_checks={c: {k: _CHECKS[k] for k in keys} for c, keys in _COMMAND_KEYS.items()},
)

if __name__ == "__main__":
    raise SystemExit(main())
