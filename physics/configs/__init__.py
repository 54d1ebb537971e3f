"""physics presets, and the checks of their values (applied by `generative.core.config.resolve`
before any command runs; a check whose keys a preset lacks does not apply to it). The choice
lists equal those of the modules that use them (tests/core/test_config.py).
"""

from generative.core.config import (
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    Check,
    at_least,
    comma_list,
    each,
    interval,
    one_of,
)

DATASETS = ("waveeq", "waveeq100", "sst", "taxibj", "chairs", "mmnist")  # physics.data
ENCODERS = ("mlp", "dcgan", "vgg", "resnet", "conv_skip")  # physics.separation.ENCODERS
DECODERS = ("mlp", "dcgan", "vgg", "conv_skip")  # physics.separation.DECODERS
ACTIVATIONS = ("relu", "tanh", "softplus", "elu", "swish")  # generative.nets.ACTIVATIONS
ADJOINTS = ("recursive", "backsolve")  # physics.separation.ADJOINTS
APHYNITY_DATASETS = ("pendulum", "fhn", "wave")  # physics.aphynity.DATASETS
APHYNITY_METHODS = ("physics", "data", "physics+data", "aphynity")  # physics.aphynity.METHODS
DISCOVER_EQUATIONS = ("burgers", "kdv", "lorenz", "pendulum")  # physics.discovery.EQUATIONS
DISCOVER_METHODS = ("ours", "pysindy")  # physics.discovery.METHODS


def _noise_levels(v):
    try:
        levels = [float(x) for x in v.split(",")] if isinstance(v, str) else []
    except ValueError:
        return False
    return bool(levels) and all(0 <= x < 1 for x in levels)


_NOISE_LEVELS = Check(_noise_levels, "a comma-separated list of noise levels in [0, 1)")


SELECTION_CRITERIA = ("aicc", "aic", "bic")  # physics.discovery.CRITERIA
ENV_SYSTEMS = ("lv", "gs")  # physics.environments.SYSTEMS
ENV_METHODS = ("leads", "leads_no_min", "one_per_env", "one_for_all")  # METHODS without coda
CODA_STUDY_METHODS = ("coda", "leads", "one_for_all")
PINN_DERIVATIVES = ("forward", "taylor")  # physics.pinn.DERIVATIVES
PINN_DTYPES = ("float32", "float64")  # physics.pinn.DTYPES

_ZERO_OR_AT_LEAST_2 = Check(
    lambda v: isinstance(v, int) and not isinstance(v, bool) and (v == 0 or v >= 2),
    "0 (whole trajectories) or an integer >= 2",
)

CHECKS = {
    "dataset": one_of(*DATASETS),
    "num_sequences": POSITIVE_INT,
    "num_train": POSITIVE_INT,
    "grid_size": POSITIVE_INT,
    "sim_frames": POSITIVE_INT,
    "cond_frames": POSITIVE_INT,
    "pred_frames": POSITIVE_INT,
    "eval_pred_frames": POSITIVE_INT,
    "eval_stride": POSITIVE_INT,
    "eval_windows": POSITIVE_INT,
    "eval_batch": POSITIVE_INT,
    "log_eval_windows": NON_NEGATIVE_INT,
    "batch_size": POSITIVE_INT,
    "digits_source": one_of("auto", "mnist", "font"),
    "num_font_digits": NON_NEGATIVE_INT,
    "model.encoder": one_of(*ENCODERS),
    "model.decoder": one_of(*DECODERS),
    "model.content_dim": POSITIVE_INT,
    "model.dynamic_dim": POSITIVE_INT,
    "model.mixing": one_of("concat", "mul"),
    "model.enc_hidden": POSITIVE_INT,
    "model.enc_layers": POSITIVE_INT,
    "model.dec_hidden": POSITIVE_INT,
    "model.dec_layers": POSITIVE_INT,
    "model.gain": POSITIVE,
    "model.nf": POSITIVE_INT,
    "model.output_activation": one_of("", "sigmoid", "none"),
    "dynamics.kind": one_of("residual", "ode"),
    "dynamics.n_blocks": POSITIVE_INT,
    "dynamics.hidden": POSITIVE_INT,
    "dynamics.activation": one_of(*ACTIVATIONS),
    "dynamics.dt": POSITIVE,
    "dynamics.adjoint": one_of(*ADJOINTS),
    "dynamics.rtol": POSITIVE,
    "dynamics.atol": POSITIVE,
    "loss.pred": NON_NEGATIVE,
    "loss.ae": NON_NEGATIVE,
    "loss.s": NON_NEGATIVE,
    "loss.t": NON_NEGATIVE,
    "aphynity.datasets": comma_list(*APHYNITY_DATASETS),
    "aphynity.methods": comma_list(*APHYNITY_METHODS),
    "aphynity.num_train": POSITIVE_INT,
    "aphynity.num_test": POSITIVE_INT,
    "aphynity.lambda0": NON_NEGATIVE,
    "aphynity.lambda_every": POSITIVE_INT,
    "aphynity.*.steps": POSITIVE_INT,
    "aphynity.*.lr": POSITIVE,
    "aphynity.*.tau": NON_NEGATIVE,
    "aphynity.*.window": _ZERO_OR_AT_LEAST_2,
    "aphynity.*.batch_size": NON_NEGATIVE_INT,  # 0: every training sequence
    "discover.equations": comma_list(*DISCOVER_EQUATIONS),
    "discover.methods": comma_list(*DISCOVER_METHODS),
    "discover.noise": _NOISE_LEVELS,
    "discover.fd_accuracy": one_of(2, 4),
    "discover.split_seed": NON_NEGATIVE_INT,
    "discover.*.n": POSITIVE_INT,
    "discover.*.nt": POSITIVE_INT,
    "discover.*.max_derivative": POSITIVE_INT,
    "discover.*.max_power": NON_NEGATIVE_INT,
    "discover.*.alpha": NON_NEGATIVE,
    "discover.*.d_tol": POSITIVE,
    "discover.*.l0_penalty": NON_NEGATIVE,
    "discover.*.deg_x": POSITIVE_INT,
    "discover.*.deg_t": POSITIVE_INT,
    "discover.*.width_x": POSITIVE_INT,
    "discover.*.width_t": POSITIVE_INT,
    "discover.*.pysindy_threshold": POSITIVE,
    "discover.*.select": Check(lambda v: isinstance(v, bool), "True or False"),
    "discover.*.select_deg_x": each(POSITIVE_INT),
    "discover.*.select_width_x": each(POSITIVE_INT),
    "discover.*.select_deg_t": each(POSITIVE_INT),
    "discover.*.select_width_t": each(POSITIVE_INT),
    "discover.*.select_l0_penalty": each(NON_NEGATIVE),  # 0: 1e-3 cond(Θ)
    "discover.*.select_horizon": POSITIVE_INT,
    "discover.*.select_starts": POSITIVE_INT,
    "discover.*.select_criterion": one_of(*SELECTION_CRITERIA),
    "discover.*.degree": NON_NEGATIVE_INT,
    "discover.*.threshold": NON_NEGATIVE,
    "discover.*.t1": POSITIVE,
    "discover.*.dt": POSITIVE,
    "environments.systems": comma_list(*ENV_SYSTEMS),
    "environments.methods": comma_list(*ENV_METHODS),
    "environments.coda_methods": Check(
        lambda v: (
            isinstance(v, str)
            and all(x.strip() in CODA_STUDY_METHODS for x in v.split(",") if x.strip())
        ),
        "empty or a comma-separated list of: " + ", ".join(CODA_STUDY_METHODS),
    ),
    "environments.num_test": at_least(2, integer=True),
    "environments.*.steps": POSITIVE_INT,
    "environments.*.adapt_steps": POSITIVE_INT,
    "environments.*.lr": POSITIVE,
    "environments.*.adapt_lr": POSITIVE,
    "environments.*.num_train": POSITIVE_INT,
    "environments.*.adapt_num_train": POSITIVE_INT,
    "environments.*.hidden": POSITIVE_INT,
    "environments.*.size": at_least(10, integer=True),
    "environments.*.scale": POSITIVE,
    "environments.*.init_gain": POSITIVE,
    "environments.*.lambda_inv": NON_NEGATIVE,
    "environments.*.factor_lip": NON_NEGATIVE,
    "environments.*.power_iterations": POSITIVE_INT,
    "environments.*.tf_decay": interval(0, 1, high_open=True),
    "environments.*.adapt_tf_decay": interval(0, 1, high_open=True),
    "environments.*.tf_every": POSITIVE_INT,
    "environments.*.adapt_tf_every": POSITIVE_INT,
    "environments.*.steps_per_obs": POSITIVE_INT,
    "environments.*.context_dim": POSITIVE_INT,
    "environments.*.lambda_w": NON_NEGATIVE,
    "environments.*.lambda_context": NON_NEGATIVE,
    "environments.*.grad_clip": NON_NEGATIVE,
    "pinn.nu": POSITIVE,
    "pinn.t_max": POSITIVE,
    "pinn.num_boundary": Check(
        lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 456,
        "an integer in [1, 456] (the initial and boundary grid points)",
    ),
    "pinn.num_collocation": POSITIVE_INT,
    "pinn.width": POSITIVE_INT,
    "pinn.depth": POSITIVE_INT,
    "pinn.derivatives": one_of(*PINN_DERIVATIVES),
    "pinn.dtype": one_of(*PINN_DTYPES),
    "pinn.lbfgs_steps": NON_NEGATIVE_INT,
    "pinn.lbfgs_memory": POSITIVE_INT,
    "pinn.lbfgs_patience": POSITIVE_INT,
}


def _waveeq_split(c):
    if c.dataset in ("waveeq", "waveeq100") and not c.num_train < c.num_sequences:
        return (
            f"num_train ({c.num_train}) must be smaller than num_sequences ({c.num_sequences}); "
            "the rest are the test sequences"
        )
    return None


def _mul_mixing(c):
    m = c.model
    if m.use_content and m.mixing == "mul" and m.content_dim != m.dynamic_dim:
        return (
            f"model.mixing=mul needs model.content_dim ({m.content_dim}) equal to "
            f"model.dynamic_dim ({m.dynamic_dim}); use mixing=concat for different sizes"
        )
    return None


CROSS_CHECKS = (_waveeq_split, _mul_mixing)
