"""WaveEq (paper setting): MLP enc 3x1200, dec 4x1200, mul mixing, 3 residual blocks, 250 epochs.

Launch: physics train --config waveeq --workdir runs/physics-waveeq
"Without S": physics train --config waveeq --workdir runs/physics-waveeq-noS model.use_content=False
"""

from physics.configs._base import separation_config


def get_config():
    c = separation_config()
    c.loss.ae = 1.0
    return c
