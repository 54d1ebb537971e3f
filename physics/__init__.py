"""physics: PDE-driven spatiotemporal disentanglement, physical simulators, APHYNITY.

No TensorFlow / tensorflow-datasets / neural-tangents import happens here.
"""

from physics.aphynity import HybridModel, aphynity_loss, make_problem
from physics.aphynity import run_benchmark as run_aphynity_benchmark
from physics.data import (
    WindowSampler,
    generate_waveeq,
    load_chairs,
    load_dataset,
    load_sst,
    load_taxibj,
    load_waveeq,
    load_waveeq100,
)
from physics.losses import LossWeights, separation_loss
from physics.separation import (
    ConvSkipDecoder,
    ConvSkipEncoder,
    ConvVectorField,
    MLPDecoder,
    MLPEncoder,
    MLPVectorField,
    ResNetEncoder,
    SeparationModel,
    TemporalDynamics,
)
from physics.simulators import (
    RK4,
    get_solver,
    integrate,
    simulate_burgers,
    simulate_damped_wave,
    simulate_fitzhugh_nagumo,
    simulate_heat,
    simulate_pendulum,
    simulate_wave,
)
