"""WaveEq-100 (paper setting): 100 fixed random pixels, enc width 2400, dec width 150.

Launch: physics train --config waveeq100 --workdir runs/physics-waveeq100
"""

from physics.configs._base import separation_config


def get_config():
    c = separation_config()
    c.dataset = "waveeq100"
    c.model.enc_hidden = 2400
    c.model.dec_hidden = 150
    c.loss.ae = 1.0
    return c
