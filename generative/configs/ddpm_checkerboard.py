"""DDPM on the 2-D checkerboard (time-conditioned MLP, linear β 1e-4 → 0.02, T = 1000).

generative train --config ddpm_checkerboard --workdir runs/ddpm_checkerboard
generative eval --config ddpm_checkerboard --workdir runs/ddpm_checkerboard

Samplers evaluated: ancestral (1000 steps), DDIM (50 steps, η = 0) and the probability-flow
ODE of the VP SDE that DDPM discretises. The other diffusion presets start from
`diffusion_config()` and share `CHECKS`.
"""

import ml_collections

from generative.core.config import (
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    at_least,
    base_config,
    comma_list,
    each,
    interval,
    one_of,
)

# The choice lists of generative.diffusion / generative.sde (kept here so that listing
# presets imports no JAX).
KINDS = ("ddpm", "ncsn", "sde")  # generative.diffusion.KINDS
NETS = ("mlp", "unet")  # generative.diffusion.NETS
DATASETS = ("toy", "digits")  # generative.diffusion.DATASETS
VARIANCES = ("beta", "posterior")  # generative.diffusion.VARIANCES
SDES = ("vp", "subvp", "ve")  # generative.sde.SDES
SOLVERS = ("tsit5", "dopri5", "dopri8", "bosh3", "heun", "midpoint", "ralston", "euler")
ODE_VARIABLES = ("t", "sigma")  # generative.sde.ODE_VARIABLES
GUIDED_SAMPLERS = ("em", "pc", "ode")
SAMPLERS = {  # generative.diffusion.SAMPLERS
    "ddpm": ("ancestral", "ddim", "ode", "em", "pc"),
    "ncsn": ("langevin",),
    "sde": ("em", "pc", "ode"),
}

CHECKS = {
    "family": one_of("diffusion"),
    "batch_size": POSITIVE_INT,
    "model.kind": one_of(*KINDS),
    "model.net": one_of(*NETS),
    "model.hidden": POSITIVE_INT,
    "model.layers": POSITIVE_INT,
    "model.embed_dim": at_least(2, integer=True),
    "model.time_scale": POSITIVE,
    "model.nf": POSITIVE_INT,
    "model.mults": each(POSITIVE_INT),
    "model.blocks": POSITIVE_INT,
    "model.groups": POSITIVE_INT,
    "model.patch": POSITIVE_INT,
    "data.name": one_of(*DATASETS),
    "data.source": one_of("auto", "mnist", "font"),
    "data.num_font_digits": NON_NEGATIVE_INT,
    "ddpm.num_timesteps": at_least(2, integer=True),
    "ddpm.beta_start": interval(0, 1, low_open=True, high_open=True),
    "ddpm.beta_end": interval(0, 1, low_open=True, high_open=True),
    "ddpm.variance": one_of(*VARIANCES),
    "ncsn.sigma_max": POSITIVE,
    "ncsn.sigma_min": POSITIVE,
    "ncsn.num_scales": at_least(2, integer=True),
    "ncsn.langevin_steps": POSITIVE_INT,
    "ncsn.step_eps": POSITIVE,
    "ncsn.denoise": one_of(True, False),
    "sde.name": one_of(*SDES),
    "sde.beta_min": POSITIVE,
    "sde.beta_max": POSITIVE,
    "sde.sigma_min": POSITIVE,
    "sde.sigma_max": POSITIVE,
    "sde.train_eps": interval(0, 1, high_open=True),
    "sde.likelihood_weighting": one_of(True, False),
    "sample.steps": POSITIVE_INT,
    "sample.pc_steps": POSITIVE_INT,
    "sample.corrector_steps": NON_NEGATIVE_INT,
    "sample.snr": POSITIVE,
    "sample.ddim_steps": POSITIVE_INT,
    "sample.eta": NON_NEGATIVE,
    "sample.ode_solver": one_of(*SOLVERS),
    "sample.ode_rtol": POSITIVE,
    "sample.ode_atol": POSITIVE,
    "sample.ode_steps": NON_NEGATIVE_INT,
    "sample.ode_variable": one_of(*ODE_VARIABLES),
    "sample.eps": interval(0, 1, high_open=True),
    "guidance.enabled": one_of(True, False),
    "guidance.hidden": POSITIVE_INT,
    "guidance.layers": POSITIVE_INT,
    "guidance.scales": each(NON_NEGATIVE),
    "guidance.sampler": one_of(*GUIDED_SAMPLERS),
    "eval.samplers": comma_list(*sorted({s for v in SAMPLERS.values() for s in v})),
    "eval.num_samples": POSITIVE_INT,
    "eval.num_test": POSITIVE_INT,
    "eval.sinkhorn": one_of(True, False),
    "eval.sinkhorn_epsilon": POSITIVE,
    "eval.nll_num": NON_NEGATIVE_INT,
    "eval.nll_batch": POSITIVE_INT,
    "eval.nll_method": one_of("auto", "exact", "hutchinson"),
    "eval.nll_solver": one_of(*SOLVERS[:-1]),
    "eval.nll_rtol": POSITIVE,
    "eval.nll_atol": POSITIVE,
    "eval.nll_eps": interval(0, 1, high_open=True),
    "eval.gif_frames": NON_NEGATIVE_INT,
    "eval.gif_samples": POSITIVE_INT,
    "eval.gif_sampler": one_of("auto", "ode", "ancestral", "ddim", "langevin"),
    "eval.guided_per_class": POSITIVE_INT,
}


def _samplers_fit_the_kind(c):
    names = [s.strip() for s in c.eval.samplers.split(",") if s.strip()]
    bad = [s for s in names if s not in SAMPLERS[c.model.kind]]
    if bad:
        return (
            f"eval.samplers {','.join(bad)} not available for model.kind={c.model.kind}; "
            f"valid: {', '.join(SAMPLERS[c.model.kind])}"
        )
    return None


def _net_fits_the_data(c):
    want = "mlp" if c.data.name == "toy" else "unet"
    if c.model.net != want:
        return f"data.name={c.data.name} needs model.net={want}, got model.net={c.model.net}"
    return None


def _ladder_descends(c):
    if c.ncsn.sigma_min >= c.ncsn.sigma_max or c.sde.sigma_min >= c.sde.sigma_max:
        return "sigma_min must be smaller than sigma_max (ncsn and sde)"
    if c.ddpm.beta_start > c.ddpm.beta_end or c.sde.beta_min > c.sde.beta_max:
        return "ddpm.beta_start <= ddpm.beta_end and sde.beta_min <= sde.beta_max are required"
    return None


CROSS_CHECKS = (_samplers_fit_the_kind, _net_fits_the_data, _ladder_descends)


def diffusion_config() -> ml_collections.ConfigDict:
    c = base_config()
    c.family = "diffusion"
    c.num_steps = 6000
    c.batch_size = 256
    c.log_every = 500
    c.checkpoint_every = 3000
    c.optimizer.lr = 1e-3
    c.optimizer.schedule = "warmup_cosine"
    c.optimizer.warmup_steps = 200
    c.optimizer.grad_clip = 1.0

    c.model = ml_collections.ConfigDict()
    c.model.kind = "ddpm"  # ddpm | ncsn | sde
    c.model.net = "mlp"  # mlp (flat data) | unet (images)
    c.model.hidden = 256  # mlp width
    c.model.layers = 3  # mlp hidden layers
    c.model.embed_dim = 64  # sinusoidal embedding of time_scale·c (mlp and the guidance classifier)
    # the embedding's highest frequency in rad per unit of c = t/T: 1000 is DDPM's embedding of
    # the step index; ~100 makes ε̂ smooth in t between steps (fewer probability-flow ODE steps)
    c.model.time_scale = 1000.0
    c.model.nf = 32  # unet base channels
    c.model.mults = (1, 2)  # unet channel multipliers per level
    c.model.blocks = 1  # unet residual blocks per level
    c.model.groups = 8  # unet group-norm groups
    c.model.patch = 2  # unet space-to-depth patch (1: full resolution)

    c.data = ml_collections.ConfigDict()
    c.data.name = "toy"  # toy | digits
    c.data.toy = "checkerboard"  # a generative.data.toy distribution
    c.data.source = "auto"  # digits: auto (MNIST if prepared, else fonts) | mnist | font
    c.data.data_dir = ""  # tensorflow-datasets folder ("" -> its default)
    c.data.num_font_digits = 0  # font digits per split (0 -> 20000 train / 5000 test)

    c.ddpm = ml_collections.ConfigDict()
    c.ddpm.num_timesteps = 1000
    c.ddpm.beta_start = 1e-4
    c.ddpm.beta_end = 0.02
    c.ddpm.variance = "beta"  # ancestral σ_t²: beta (β_t) | posterior (β̃_t)

    c.ncsn = ml_collections.ConfigDict()
    c.ncsn.sigma_max = 6.0
    c.ncsn.sigma_min = 0.01
    c.ncsn.num_scales = 50
    c.ncsn.langevin_steps = 20  # Langevin steps per noise level
    c.ncsn.step_eps = 2e-5  # α_i = step_eps σ_i² / σ_L²
    c.ncsn.denoise = True  # a final Tweedie denoising step

    c.sde = ml_collections.ConfigDict()
    c.sde.name = "vp"  # vp | subvp | ve
    c.sde.beta_min = 0.1
    c.sde.beta_max = 20.0
    c.sde.sigma_min = 0.01
    c.sde.sigma_max = 50.0
    c.sde.train_eps = 1e-5  # training times t ~ U(train_eps, 1)
    c.sde.likelihood_weighting = False  # λ(t) = g(t)² instead of σ(t)²

    c.sample = ml_collections.ConfigDict()
    c.sample.steps = 1000  # Euler–Maruyama steps
    c.sample.pc_steps = 500  # predictor–corrector steps
    c.sample.corrector_steps = 1
    c.sample.snr = 0.16
    c.sample.ddim_steps = 50
    c.sample.eta = 0.0
    c.sample.ode_solver = "tsit5"
    c.sample.ode_rtol = 1e-3
    c.sample.ode_atol = 1e-3
    c.sample.ode_steps = 0  # 0: adaptive; > 0: that many uniform steps
    c.sample.ode_variable = "t"  # "sigma": in ς = σ/m and x/m (generative.sde.ode_sample)
    c.sample.ode_denoise = False  # one last network evaluation: Tweedie's E[x(0) | x(eps)]
    c.sample.eps = 1e-3  # samplers stop at t = eps

    c.guidance = ml_collections.ConfigDict()
    c.guidance.enabled = False
    c.guidance.hidden = 128  # noise-conditional classifier (TimeMLP)
    c.guidance.layers = 2
    c.guidance.scales = (0.0, 1.0, 4.0)
    c.guidance.sampler = "em"

    c.eval = ml_collections.ConfigDict()
    c.eval.samplers = "ancestral,ddim,ode"  # the first one draws the density figure
    c.eval.num_samples = 2000
    c.eval.num_test = 2000
    c.eval.sinkhorn = True  # the Sinkhorn divergence too (ott-jax; slower than the energy)
    c.eval.sinkhorn_epsilon = 0.1
    c.eval.nll_num = 1000  # test examples of the probability-flow NLL (0: skip)
    c.eval.nll_batch = 500
    c.eval.nll_method = "auto"  # auto (exact for <= 8 dimensions) | exact | hutchinson
    c.eval.nll_solver = "tsit5"
    c.eval.nll_rtol = 1e-5
    c.eval.nll_atol = 1e-5
    c.eval.nll_eps = 1e-5
    c.eval.gif_frames = 40  # probability-flow frames of flow.gif (0: none)
    c.eval.gif_samples = 1000
    c.eval.gif_sampler = "auto"  # auto (ode; ncsn: langevin) | ode | ancestral | ddim | langevin
    c.eval.guided_per_class = 250
    return c


def get_config():
    return diffusion_config()
