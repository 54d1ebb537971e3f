"""Equation discovery smoke test: Burgers (the PDE-FIND grid) and a short Lorenz trajectory,
clean and noisy, our fits only (seconds).

Launch: physics discover --config discover_tiny --workdir /tmp/physics-discover-tiny
"""

from physics.configs import discover


def get_config():
    c = discover.get_config()
    c.discover.equations = "burgers,lorenz"
    c.discover.methods = "ours"
    c.discover.lorenz.t1 = 2.0
    return c
