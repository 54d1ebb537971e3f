"""physics: PDE-driven spatiotemporal disentanglement, physical simulators, APHYNITY.

No TensorFlow / tensorflow-datasets / neural-tangents import happens here.
"""

from physics.aphynity import HybridModel
from physics.aphynity import aphynity_loss
from physics.aphynity import make_problem
from physics.aphynity import run_benchmark as run_aphynity_benchmark
from physics.data import WindowSampler
from physics.data import generate_waveeq
from physics.data import load_chairs
from physics.data import load_dataset
from physics.data import load_sst
from physics.data import load_taxibj
from physics.data import load_waveeq
from physics.data import load_waveeq100
from physics.losses import LossWeights
from physics.losses import separation_loss
from physics.model import ConvSkipDecoder
from physics.model import ConvSkipEncoder
from physics.model import DCGANDecoder
from physics.model import DCGANEncoder
from physics.model import MLPDecoder
from physics.model import MLPEncoder
from physics.model import MLPVectorField
from physics.model import ResNetEncoder
from physics.model import SeparationModel
from physics.model import TemporalDynamics
from physics.model import VGGDecoder
from physics.model import VGGEncoder
from physics.simulators import RK4
from physics.simulators import get_solver
from physics.simulators import integrate
from physics.simulators import simulate_burgers
from physics.simulators import simulate_damped_wave
from physics.simulators import simulate_fitzhugh_nagumo
from physics.simulators import simulate_heat
from physics.simulators import simulate_pendulum
from physics.simulators import simulate_wave
