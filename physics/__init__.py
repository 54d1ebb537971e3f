"""physics: PDE-driven spatiotemporal disentanglement, physical simulators, APHYNITY."""

from physics.data import WindowSampler
from physics.data import generate_waveeq
from physics.data import load_chairs
from physics.data import load_dataset
from physics.data import load_sst
from physics.data import load_taxibj
from physics.data import load_waveeq
from physics.data import load_waveeq100
from physics.simulators import RK4
from physics.simulators import get_solver
from physics.simulators import integrate
from physics.simulators import simulate_burgers
from physics.simulators import simulate_damped_wave
from physics.simulators import simulate_fitzhugh_nagumo
from physics.simulators import simulate_heat
from physics.simulators import simulate_pendulum
from physics.simulators import simulate_wave
