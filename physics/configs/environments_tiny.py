"""Learning across environments, a few steps of each method on small problems: smoke tests.

Launch: physics environments --config environments_tiny --workdir /tmp/physics-environments-tiny
"""

from physics.configs import environments


def get_config():
    c = environments.get_config()
    c.log_every = c.checkpoint_every = 2
    c.progress = False
    e = c.environments
    e.systems = "lv"
    e.methods = "leads,one_per_env,one_for_all"
    e.num_test = 3
    e.lv.steps = 2
    e.lv.hidden = 8
    e.coda.steps = 2
    e.coda.adapt_steps = 2
    e.coda.num_train = 2
    e.gs.steps = 2
    e.gs.hidden = 4
    e.gs.size = 16
    return c
