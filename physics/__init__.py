"""physics: PDE-driven spatiotemporal disentanglement, physical simulators, APHYNITY, LEADS/CoDA.

    import jax, jax.numpy as jnp, optax, physics
    from generative import nets
    model = physics.SeparationModel(                         # physics/separation.py
        content_encoder=nets.DCGANEncoder(8, nf=16, norm="group"),
        dynamic_encoder=nets.DCGANEncoder(8, nf=16, norm="group"),
        decoder=nets.DCGANDecoder((32, 32, 1), nf=16, norm="group"),
        dynamics=physics.TemporalDynamics(physics.MLPVectorField(hidden=32), dt=0.5),
    )
    tx = optax.adam(1e-3)
    state = physics.init_state(model, tx, seqs[:, :2], jax.random.key(0))
    step = jax.jit(physics.train_step(model, tx, cond_frames=2))
    state, metrics = step(state, seqs, key)                  # seqs [B, L, 32, 32, 1]
    forecast = physics.predict(model, state.params, windows, cond_frames=2)

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
from physics.environments import MultiEnvModel
from physics.environments import run_benchmark as run_environments_benchmark
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
    fixed_step_rollout,
    get_solver,
    integrate,
    simulate_burgers,
    simulate_damped_wave,
    simulate_fitzhugh_nagumo,
    simulate_gray_scott,
    simulate_heat,
    simulate_lotka_volterra,
    simulate_pendulum,
    simulate_wave,
)
from physics.train import build_model, init_state, predict, train_step

__all__ = [
    "aphynity_loss",
    "build_model",
    "ConvSkipDecoder",
    "ConvSkipEncoder",
    "ConvVectorField",
    "fixed_step_rollout",
    "generate_waveeq",
    "get_solver",
    "HybridModel",
    "init_state",
    "integrate",
    "load_chairs",
    "load_dataset",
    "load_sst",
    "load_taxibj",
    "load_waveeq",
    "load_waveeq100",
    "LossWeights",
    "make_problem",
    "MLPDecoder",
    "MLPEncoder",
    "MLPVectorField",
    "MultiEnvModel",
    "predict",
    "ResNetEncoder",
    "RK4",
    "run_aphynity_benchmark",
    "run_environments_benchmark",
    "separation_loss",
    "SeparationModel",
    "simulate_burgers",
    "simulate_damped_wave",
    "simulate_fitzhugh_nagumo",
    "simulate_gray_scott",
    "simulate_heat",
    "simulate_lotka_volterra",
    "simulate_pendulum",
    "simulate_wave",
    "TemporalDynamics",
    "train_step",
    "WindowSampler",
]
