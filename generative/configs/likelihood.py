"""Test NLL of trained runs of any family with a `log_likelihood` hook, as a markdown table.

generative likelihood --config likelihood likelihood.presets=sde_vp_checkerboard,ddpm_checkerboard
generative likelihood likelihood.runs=runs/a,runs/b likelihood.num=2000
"""

import ml_collections

# The checks of likelihood.* are the package's (generative/configs/__init__.py).


def get_config():
    c = ml_collections.ConfigDict()
    c.seed = 0  # key of the dequantisation noise and the Hutchinson probes
    c.likelihood = ml_collections.ConfigDict()
    c.likelihood.runs = ""  # run folders, comma-separated
    c.likelihood.presets = ""  # presets trained in their default folder runs/generative-train-P
    c.likelihood.num = 1000  # held-out examples per run
    return c
