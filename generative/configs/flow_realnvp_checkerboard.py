"""RealNVP (8 affine couplings, tanh-bounded log-scale) on the 2-D checkerboard.

generative train --config flow_realnvp_checkerboard --workdir runs/flow_realnvp_checkerboard

Every step draws a fresh batch (steps run in `lax.scan` chunks). The test NLL (nats, on
held-out points) is compared with the checkerboard's entropy ln 32 = 3.4657, its floor. This
module also defines the keys and checks of every `flow_*` preset (`flow_config`).
"""

import ml_collections

from generative.configs import TOY_DATASETS
from generative.core.config import (
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    at_least,
    base_config,
    each,
    interval,
    one_of,
)

KINDS = ("nice", "realnvp", "maf", "resflow", "cnf")  # generative.flows.KINDS
ACTIVATIONS = ("relu", "tanh", "softplus", "elu")  # generative.nets.ACTIVATIONS
LOG_SCALES = ("tanh", "softclamp")  # generative.flows.LOG_SCALES
LOGDETS = ("roulette", "series", "exact")  # generative.flows.LOGDETS
TRACES = ("hutchinson", "exact")  # generative.flows.TRACES
SOLVERS = ("dopri5", "tsit5")  # generative.flows.SOLVERS
ADJOINTS = ("backsolve", "direct", "forward")  # generative.flows.ADJOINTS

CHECKS = {
    "batch_size": POSITIVE_INT,
    "data.toy": one_of(*TOY_DATASETS),
    "model.kind": one_of(*KINDS),
    "model.layers": POSITIVE_INT,
    "model.hidden": each(POSITIVE_INT),
    "model.activation": one_of(*ACTIVATIONS),
    "model.log_scale": one_of(*LOG_SCALES),
    "model.clamp": POSITIVE,
    "model.lipschitz": interval(0, 1, low_open=True, high_open=True),
    "model.power_iterations": POSITIVE_INT,
    "model.logdet": one_of(*LOGDETS),
    "model.roulette_p": interval(0, 1, low_open=True, high_open=True),
    "model.exact_terms": NON_NEGATIVE_INT,
    "model.inverse_tol": POSITIVE,
    "model.inverse_max_iter": POSITIVE_INT,
    "model.t1": POSITIVE,
    "model.trace": one_of(*TRACES),
    "model.solver": one_of(*SOLVERS),
    "model.rtol": POSITIVE,
    "model.atol": POSITIVE,
    "model.adjoint": one_of(*ADJOINTS),
    "model.max_steps": POSITIVE_INT,
    "eval.num_test": at_least(2, integer=True),
    "eval.batch": POSITIVE_INT,
    "eval.log_num_test": NON_NEGATIVE_INT,
    "eval.num_samples": at_least(2, integer=True),
    "eval.grid": POSITIVE_INT,
    "eval.extent": POSITIVE,
    "eval.sinkhorn_epsilon": POSITIVE,
    "eval.logdet": one_of(*LOGDETS),
    "eval.trace": one_of(*TRACES),
    "eval.rtol": POSITIVE,
    "eval.atol": POSITIVE,
    "eval.gif_frames": POSITIVE_INT,
}


def _reported_logdet_is_exact(c):
    if c.model.kind == "resflow" and c.eval.logdet != "exact":
        return (
            f"eval.logdet must be exact (the reported NLL is not an estimate), got {c.eval.logdet}"
        )
    return None


CROSS_CHECKS = (_reported_logdet_is_exact,)


def flow_config(kind: str = "realnvp") -> ml_collections.ConfigDict:
    c = base_config()
    c.family = "flow"
    c.num_steps = 20000
    c.batch_size = 512
    c.log_every = 2000
    c.checkpoint_every = 10000
    c.optimizer.lr = 1e-3
    c.optimizer.schedule = "cosine"

    c.data = ml_collections.ConfigDict()
    c.data.toy = "checkerboard"  # a generative.data.toy distribution

    c.model = ml_collections.ConfigDict()
    c.model.kind = kind  # nice | realnvp | maf | resflow | cnf
    c.model.layers = 8  # couplings (nice, realnvp), MADE layers (maf), residual blocks
    c.model.hidden = (64, 64)  # hidden widths of each coupling net / MADE / g / the CNF field
    c.model.activation = "relu"  # of the coupling nets, MADEs and CNF field (resflow: LipSwish)
    c.model.log_scale = "tanh"  # realnvp, maf: tanh (a·tanh, a learned) | softclamp
    c.model.clamp = 2.0  # softclamp: |log-scale| < clamp
    # residual flows
    c.model.lipschitz = 0.97  # spectral-normalisation coefficient c < 1 (Lip(g) <= c)
    c.model.power_iterations = 1  # per training step
    c.model.logdet = "roulette"  # training log-det: roulette (unbiased) | series | exact
    c.model.roulette_p = 0.5  # geometric number of extra terms, P(M >= m) = (1 - p)^m
    c.model.exact_terms = 2  # terms always computed (series: the truncation)
    c.model.inverse_tol = 1e-6  # fixed-point inverse: stop at max |x_{k+1} - x_k| <= tol
    c.model.inverse_max_iter = 500
    # continuous flows
    c.model.t1 = 1.0  # ODE time of the flow
    c.model.trace = "hutchinson"  # training divergence: hutchinson | exact
    c.model.solver = "dopri5"  # dopri5 | tsit5 (adaptive)
    c.model.rtol = 1e-5
    c.model.atol = 1e-5
    # backsolve (adjoint ODE) | direct (through the solver) | forward (forward mode only)
    c.model.adjoint = "backsolve"
    c.model.max_steps = 4096

    c.eval = ml_collections.ConfigDict()
    c.eval.num_test = 10000  # held-out points of the final NLL
    c.eval.batch = 2000  # points per log-density evaluation
    c.eval.log_num_test = 2000  # held-out points of the NLL at logging steps (0: none)
    c.eval.num_samples = 2000  # samples of the Sinkhorn / energy distances and the scatter
    c.eval.grid = 200  # density plot: grid × grid cells over [-extent, extent]^2
    c.eval.extent = 4.5
    c.eval.sinkhorn = True  # the Sinkhorn divergence of the samples (ott-jax)
    c.eval.sinkhorn_epsilon = 0.1
    c.eval.logdet = "exact"  # residual flows: the reported log-det
    c.eval.trace = "exact"  # CNF: the reported divergence
    c.eval.rtol = 1e-5  # CNF: solver tolerances of the evaluation
    c.eval.atol = 1e-5
    c.eval.gif_frames = 40  # CNF: frames of flow.gif (ODE time from t1 to 0)
    return c


def get_config():
    return flow_config("realnvp")
