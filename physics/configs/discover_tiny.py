"""Equation discovery smoke test: Burgers (the PDE-FIND grid) and a short Lorenz trajectory,
clean and noisy, our fits only; the noisy Burgers windows selected among a small grid
(seconds).

Launch: physics discover --config discover_tiny --workdir /tmp/physics-discover-tiny
"""

from physics.configs import discover


def get_config():
    c = discover.get_config()
    c.discover.equations = "burgers,lorenz"
    c.discover.methods = "ours"
    c.discover.lorenz.t1 = 2.0
    b = c.discover.burgers
    b.select_deg_x, b.select_width_x, b.select_deg_t, b.select_width_t = (4, 6), (8, 12), (3,), (5,)
    b.select_l0_penalty, b.select_horizon, b.select_starts = (0.0, 2.0), 5, 4
    return c
