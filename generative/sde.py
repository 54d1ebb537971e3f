"""Score-based generative modelling through SDEs (Song et al., 2021): the forward SDEs, the
reverse-time samplers, and the probability-flow ODE for sampling and exact likelihoods.

Forward SDEs dx = f(x, t) dt + g(t) dw on t ∈ [0, T] (T = 1), each with a Gaussian
perturbation kernel p_0t(x(t) | x(0)) = N(m(t) x(0), σ(t)² I) written `marginal(t) -> (m, σ)`:

- VP (variance preserving, the continuous limit of DDPM): β(t) = β_min + t (β_max − β_min),
  f = −½ β(t) x, g = √β(t). With B(t) = ∫_0^t β = β_min t + ½ t² (β_max − β_min):
  m = e^{−B/2}, σ² = 1 − e^{−B}. Defaults β_min = 0.1, β_max = 20: m(1) = e^{−5.025} =
  0.0065716, σ(1) = 0.99998. DDPM's discrete β_i = β(i/N)/N for N = 1000 steps gives its
  linear schedule 1e-4 → 0.02 (`generative.diffusion.linear_schedule`).
- sub-VP: the same drift and g² = β(t) (1 − e^{−2B(t)}): m = e^{−B/2}, σ² = (1 − e^{−B})²,
  at most the VP variance at every t.
- VE (variance exploding, the continuous limit of NCSN): σ_v(t) = σ_min (σ_max/σ_min)^t,
  f = 0, g = σ_v(t) √(2 ln(σ_max/σ_min)). Since g² = d σ_v²/dt, the kernel is m = 1 and
  σ² = σ_v(t)² − σ_min² (exactly; Song et al.'s code uses σ_v(t) itself, which differs from
  it by at most σ_min²). Defaults σ_min = 0.01, σ_max = 50: σ_v(0.5) = √(0.01 · 50) = 0.70711.

Priors: N(0, I) for VP and sub-VP, N(0, σ(T)² I) for VE.

Score models are given as ε-predictors ε̂(x, t) ≈ −σ(t) ∇_x log p_t(x) (the network's output
scale stays O(1) at every noise level); `score_from_eps` turns one into a score
s(x, t) = −ε̂(x, t)/σ(t). `dsm_loss` is the continuous-time denoising score-matching loss
E_t E_{x0} E_ε λ(t) ‖s(x_t, t) + ε/σ(t)‖² with t ~ U(ε_t, T), x_t = m x0 + σ ε; with
λ(t) = σ(t)² it is E ‖ε̂ − ε‖² (the DDPM loss in continuous time), with λ(t) = g(t)² (the
"likelihood weighting") it bounds the KL between data and model (Song et al., 2021b).

Reverse time (Anderson 1982): dx = [f(x, t) − g(t)² ∇ log p_t(x)] dt + g(t) dw̄ with dt < 0.
Samplers from x(T) ~ prior to t = ε_t:

- `euler_maruyama`: x ← x + [f − g² s] Δt + g √|Δt| z on a uniform grid (no noise on the last
  step, i.e. its mean is returned);
- `predictor_corrector`: before each Euler–Maruyama predictor step, `corrector_steps`
  Langevin steps x ← x + η s + √(2η) z with η = 2 (r ‖z‖ / ‖s‖)² (batch-mean norms; r the
  signal-to-noise ratio `snr`), as Song et al.'s PC sampler with α = 1;
- `ode_sample`: the probability-flow ODE dx/dt = f(x, t) − ½ g(t)² s(x, t), which has the
  same marginals p_t as the SDE, solved backwards from T with diffrax (adaptive step size
  with any of `SOLVERS`, or a fixed number of steps).

Exact likelihood (`log_likelihood`): integrating the same ODE forwards from ε_t to T while
accumulating the divergence (instantaneous change of variables),
log p_ε(x) = log p_T(x(T)) + ∫_ε^T ∇·f̃(x(t), t) dt, computed by
`generative.continuous.solve_with_logdet` (exact divergence, or Hutchinson's estimator
vᵀ (∂f̃/∂x) v with one probe per example held fixed along the path). For 8-bit images,
`bits_per_dim` turns the density of dequantised data into bits per dimension.

All functions are pure and jittable; x is [n, ...] with any event shape; t is a scalar or [n].
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "SDES",
    "SOLVERS",
    "VPSDE",
    "SubVPSDE",
    "VESDE",
    "make_sde",
    "score_from_eps",
    "dsm_loss",
    "probability_flow",
    "euler_maruyama",
    "predictor_corrector",
    "ODESample",
    "ode_solver",
    "ode_function_evaluations",
    "ode_sample",
    "ODE_VARIABLES",
    "log_likelihood",
    "bits_per_dim",
]

EpsFn = Callable[[jax.Array, jax.Array], jax.Array]  # (x [n, ...], t [n]) -> ε̂ [n, ...]
ScoreFn = Callable[[jax.Array, jax.Array], jax.Array]  # (x [n, ...], t [n]) -> s [n, ...]

SDES = ("vp", "subvp", "ve")
SOLVERS = ("tsit5", "dopri5", "dopri8", "bosh3", "heun", "midpoint", "ralston", "euler")
ODE_VARIABLES = ("t", "sigma")  # the probability-flow ODE's variable (`ode_sample`)
_LOG_2PI = math.log(2 * math.pi)


def _per_example(c: jax.Array, x: jax.Array) -> jax.Array:
    """A scalar or [n] coefficient shaped to multiply x [n, ...] (no implicit rank promotion)."""
    c = jnp.asarray(c, x.dtype)
    if c.ndim == 0:
        return c
    return c.reshape(c.shape + (1,) * (x.ndim - c.ndim))


def _sum_event(a: jax.Array) -> jax.Array:
    return a.reshape(a.shape[0], -1).sum(-1)


class _SDE:
    """Methods shared by the three SDEs (each defines name, T, drift_coef, diffusion,
    marginal, prior_std, and the noise-to-signal ratio ς(t) = σ(t)/m(t) with its inverse,
    `noise_ratio` and `time_of_noise_ratio`)."""

    T: float = 1.0

    def drift(self, x: jax.Array, t) -> jax.Array:
        """f(x, t) = a(t) x (linear for all three SDEs). x [n, ...], t scalar or [n]."""
        return _per_example(self.drift_coef(t), x) * x

    def prior_sample(self, key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
        """x(T) ~ N(0, prior_std² I), [*shape]."""
        return self.prior_std * jax.random.normal(key, shape, dtype)

    def prior_logp(self, z: jax.Array) -> jax.Array:
        """log N(z; 0, prior_std² I) summed over the event: [n, ...] -> [n]."""
        s = self.prior_std
        d = math.prod(z.shape[1:])
        return -0.5 * _sum_event(z**2) / s**2 - d * (0.5 * _LOG_2PI + math.log(s))

    def perturb(self, x0: jax.Array, t: jax.Array, noise: jax.Array) -> jax.Array:
        """x_t = m(t) x0 + σ(t) ε: a draw of p_0t(· | x0). x0, noise [n, ...], t [n]."""
        mean, std = self.marginal(t)
        return _per_example(mean, x0) * x0 + _per_example(std, x0) * noise


@dataclasses.dataclass(frozen=True)
class VPSDE(_SDE):
    """Variance-preserving SDE, β(t) = β_min + t (β_max − β_min) (see the module docstring)."""

    beta_min: float = 0.1
    beta_max: float = 20.0
    name: str = "vp"

    @property
    def prior_std(self) -> float:
        return 1.0

    def beta(self, t):
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def integral_beta(self, t):
        """B(t) = ∫_0^t β(s) ds."""
        return self.beta_min * t + 0.5 * t**2 * (self.beta_max - self.beta_min)

    def drift_coef(self, t):
        return -0.5 * self.beta(t)

    def diffusion(self, t):
        return jnp.sqrt(self.beta(t))

    def marginal(self, t):
        """(m(t), σ(t)) = (e^{−B/2}, √(1 − e^{−B}))."""
        b = self.integral_beta(jnp.asarray(t))
        return jnp.exp(-0.5 * b), jnp.sqrt(-jnp.expm1(-b))

    def time_of_integral(self, b):
        """t with B(t) = b: the positive root 2b / (β_min + √(β_min² + 2 b (β_max − β_min)))
        of ½ (β_max − β_min) t² + β_min t − b (no cancellation; β_max = β_min allowed)."""
        d = self.beta_max - self.beta_min
        return 2.0 * b / (self.beta_min + jnp.sqrt(self.beta_min**2 + 2.0 * d * b))

    def noise_ratio(self, t):
        """ς(t) = σ(t)/m(t) = √(e^{B} − 1)."""
        return jnp.sqrt(jnp.expm1(self.integral_beta(jnp.asarray(t))))

    def time_of_noise_ratio(self, r):
        """The inverse of `noise_ratio`: B = log(1 + ς²)."""
        return self.time_of_integral(jnp.log1p(jnp.asarray(r) ** 2))


@dataclasses.dataclass(frozen=True)
class SubVPSDE(VPSDE):
    """sub-VP SDE: the VP drift with g² = β(t) (1 − e^{−2B(t)})."""

    name: str = "subvp"

    def diffusion(self, t):
        b = self.integral_beta(jnp.asarray(t))
        return jnp.sqrt(self.beta(t) * -jnp.expm1(-2.0 * b))

    def marginal(self, t):
        """(m(t), σ(t)) = (e^{−B/2}, 1 − e^{−B})."""
        b = self.integral_beta(jnp.asarray(t))
        return jnp.exp(-0.5 * b), -jnp.expm1(-b)

    def noise_ratio(self, t):
        """ς(t) = σ(t)/m(t) = e^{B/2} − e^{−B/2} = 2 sinh(B/2)."""
        return 2.0 * jnp.sinh(0.5 * self.integral_beta(jnp.asarray(t)))

    def time_of_noise_ratio(self, r):
        """The inverse of `noise_ratio`: B = 2 asinh(ς/2)."""
        return self.time_of_integral(2.0 * jnp.arcsinh(0.5 * jnp.asarray(r)))


@dataclasses.dataclass(frozen=True)
class VESDE(_SDE):
    """Variance-exploding SDE, σ_v(t) = σ_min (σ_max/σ_min)^t (see the module docstring)."""

    sigma_min: float = 0.01
    sigma_max: float = 50.0
    name: str = "ve"

    @property
    def prior_std(self) -> float:
        return math.sqrt(self.sigma_max**2 - self.sigma_min**2)

    def sigma(self, t):
        """σ_v(t) = σ_min (σ_max/σ_min)^t, the noise level of NCSN's ladder at time t."""
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** jnp.asarray(t)

    def drift_coef(self, t):
        return 0.0 * jnp.asarray(t)

    def diffusion(self, t):
        return self.sigma(t) * math.sqrt(2 * math.log(self.sigma_max / self.sigma_min))

    def marginal(self, t):
        """(m(t), σ(t)) = (1, √(σ_v(t)² − σ_min²)), computed as σ_min √(expm1(2t ln r)),
        r = σ_max/σ_min (no cancellation near t = 0)."""
        t = jnp.asarray(t)
        log_r = math.log(self.sigma_max / self.sigma_min)
        return jnp.ones_like(t), self.sigma_min * jnp.sqrt(jnp.expm1(2.0 * t * log_r))

    def noise_ratio(self, t):
        """ς(t) = σ(t) (m = 1)."""
        return self.marginal(t)[1]

    def time_of_noise_ratio(self, r):
        """The inverse of `noise_ratio`: t = log(1 + (ς/σ_min)²) / (2 ln(σ_max/σ_min))."""
        log_r = math.log(self.sigma_max / self.sigma_min)
        return jnp.log1p((jnp.asarray(r) / self.sigma_min) ** 2) / (2.0 * log_r)


def make_sde(name: str, **kwargs) -> _SDE:
    """'vp' | 'subvp' | 've' with its parameters (beta_min/beta_max or sigma_min/sigma_max)."""
    if name in ("vp", "subvp"):
        cls = VPSDE if name == "vp" else SubVPSDE
        return cls(float(kwargs.get("beta_min", 0.1)), float(kwargs.get("beta_max", 20.0)))
    if name == "ve":
        lo, hi = float(kwargs.get("sigma_min", 0.01)), float(kwargs.get("sigma_max", 50.0))
        if not 0 < lo < hi:
            raise ValueError(f"the VE SDE needs 0 < sigma_min < sigma_max, got {lo}, {hi}")
        return VESDE(lo, hi)
    raise ValueError(f"unknown SDE {name!r}; valid choices: {', '.join(SDES)}")


def score_from_eps(sde: _SDE, eps_fn: EpsFn) -> ScoreFn:
    """s(x, t) = −ε̂(x, t) / σ(t), σ(t) the std of the perturbation kernel."""

    def score(x, t):
        _, std = sde.marginal(t)
        return -eps_fn(x, t) / _per_example(std, x)

    return score


def _times(t, n: int, dtype) -> jax.Array:
    return jnp.broadcast_to(jnp.asarray(t, dtype), (n,))


# ----------------------------------------------------------------------------- training


def dsm_loss(
    sde: _SDE,
    eps_fn: EpsFn,
    x0: jax.Array,
    key: jax.Array,
    *,
    eps: float = 1e-5,
    likelihood_weighting: bool = False,
) -> jax.Array:
    """Continuous-time denoising score matching, one t and one ε per example: [n].

    t ~ U(eps, T), x_t = m(t) x0 + σ(t) ε, and the per-example loss (summed over the event)
    λ(t) ‖s(x_t, t) + ε/σ(t)‖² = (λ(t)/σ(t)²) ‖ε̂(x_t, t) − ε‖² with λ = σ² (default,
    ‖ε̂ − ε‖²) or λ = g² (`likelihood_weighting`: (g²/σ²) ‖ε̂ − ε‖², an upper bound on the
    KL divergence up to a constant; its weight is large near t = 0, so its estimate is
    noisier)."""
    kt, kn = jax.random.split(key)
    n = x0.shape[0]
    t = jax.random.uniform(kt, (n,), x0.dtype, eps, sde.T)
    noise = jax.random.normal(kn, x0.shape, x0.dtype)
    err = _sum_event((eps_fn(sde.perturb(x0, t, noise), t) - noise) ** 2)
    if likelihood_weighting:
        _, std = sde.marginal(t)
        err = err * sde.diffusion(t) ** 2 / std**2
    return err


# ----------------------------------------------------------------------------- reverse SDE


def probability_flow(sde: _SDE, score_fn: ScoreFn) -> Callable[[Any, jax.Array, Any], jax.Array]:
    """The probability-flow vector field (t, x, args) -> f(x, t) − ½ g(t)² s(x, t), [n, ...]."""

    def field(t, x, args=None):
        tt = _times(t, x.shape[0], x.dtype)
        g2 = _per_example(sde.diffusion(tt) ** 2, x)
        return sde.drift(x, tt) - 0.5 * g2 * score_fn(x, tt)

    return field


def _grid(sde: _SDE, num_steps: int, eps: float, dtype) -> jax.Array:
    return jnp.linspace(sde.T, eps, num_steps + 1, dtype=dtype)


def euler_maruyama(
    sde: _SDE, score_fn: ScoreFn, key: jax.Array, x_T: jax.Array, num_steps: int, eps: float = 1e-3
) -> jax.Array:
    """Reverse-SDE Euler–Maruyama from x(T) = x_T to t = eps in `num_steps` uniform steps
    (`num_steps` score evaluations); the last step adds no noise. -> x [n, ...]."""
    ts = _grid(sde, num_steps, eps, x_T.dtype)
    n = x_T.shape[0]

    def step(x, i):
        t, dt = ts[i], ts[i + 1] - ts[i]  # dt < 0
        tt = _times(t, n, x.dtype)
        g = _per_example(sde.diffusion(tt), x)
        mean = x + (sde.drift(x, tt) - g**2 * score_fn(x, tt)) * dt
        z = jax.random.normal(jax.random.fold_in(key, i), x.shape, x.dtype)
        last = i == num_steps - 1
        return jnp.where(last, mean, mean + g * jnp.sqrt(-dt) * z), None

    x, _ = jax.lax.scan(step, x_T, jnp.arange(num_steps))
    return x


def predictor_corrector(
    sde: _SDE,
    score_fn: ScoreFn,
    key: jax.Array,
    x_T: jax.Array,
    num_steps: int,
    *,
    corrector_steps: int = 1,
    snr: float = 0.16,
    eps: float = 1e-3,
) -> jax.Array:
    """Predictor–corrector sampling: at each of `num_steps` grid times, `corrector_steps`
    Langevin steps x ← x + η s + √(2η) z, η = 2 (snr ‖z‖ / ‖s‖)² (norms averaged over the
    batch), then one reverse Euler–Maruyama step. num_steps (1 + corrector_steps) score
    evaluations. -> x [n, ...]."""
    ts = _grid(sde, num_steps, eps, x_T.dtype)
    n = x_T.shape[0]

    def norm(a):
        return jnp.mean(jnp.sqrt(_sum_event(a**2)))

    def langevin(carry, j):
        x, t, k = carry
        tt = _times(t, n, x.dtype)
        s = score_fn(x, tt)
        z = jax.random.normal(jax.random.fold_in(k, j), x.shape, x.dtype)
        step = 2 * (snr * norm(z) / norm(s)) ** 2
        return (x + step * s + jnp.sqrt(2 * step) * z, t, k), None

    def step(x, i):
        t, dt = ts[i], ts[i + 1] - ts[i]
        kc, kp = jax.random.split(jax.random.fold_in(key, i))
        (x, _, _), _ = jax.lax.scan(langevin, (x, t, kc), jnp.arange(corrector_steps))
        tt = _times(t, n, x.dtype)
        g = _per_example(sde.diffusion(tt), x)
        mean = x + (sde.drift(x, tt) - g**2 * score_fn(x, tt)) * dt
        z = jax.random.normal(kp, x.shape, x.dtype)
        return jnp.where(i == num_steps - 1, mean, mean + g * jnp.sqrt(-dt) * z), None

    x, _ = jax.lax.scan(step, x_T, jnp.arange(num_steps))
    return x


# ----------------------------------------------------------------------------- the ODE


def ode_solver(name: str):
    """A diffrax solver by name (one of `SOLVERS`)."""
    import diffrax

    table = {
        "tsit5": diffrax.Tsit5,
        "dopri5": diffrax.Dopri5,
        "dopri8": diffrax.Dopri8,
        "bosh3": diffrax.Bosh3,
        "heun": diffrax.Heun,
        "midpoint": diffrax.Midpoint,
        "ralston": diffrax.Ralston,
        "euler": diffrax.Euler,
    }
    if name not in table:
        raise ValueError(f"unknown ODE solver {name!r}; valid choices: {', '.join(SOLVERS)}")
    return table[name]()


def ode_function_evaluations(solver, num_steps) -> Any:
    """Vector-field evaluations of a diffrax Runge–Kutta solve of `num_steps` steps
    (accepted and rejected): (stages − 1) · steps + 1 for first-same-as-last tableaus
    (Tsit5, Dopri5, Bosh3, ...: the last stage is the next step's first), stages · steps
    otherwise (Euler: 1 stage)."""
    tableau = getattr(solver, "tableau", None)
    if tableau is None:
        return num_steps
    stages = len(tableau.c) + 1
    if tableau.fsal:
        return (stages - 1) * num_steps + 1
    return stages * num_steps


class ODESample(NamedTuple):
    x: jax.Array  # [n, ...] at t = eps
    path: jax.Array | None  # [k, n, ...] at the save times (T first), or None
    num_steps: jax.Array  # [] int, solver steps (accepted + rejected)
    nfe: jax.Array  # [] int, vector-field (network) evaluations


def ode_sample(
    sde: _SDE,
    score_fn: ScoreFn,
    x_T: jax.Array,
    *,
    eps: float = 1e-3,
    solver: str = "tsit5",
    rtol: float = 1e-3,
    atol: float = 1e-3,
    steps: int = 0,
    save_every: int = 0,
    max_steps: int = 4096,
    variable: str = "t",
    denoise: bool = False,
) -> ODESample:
    """Samples by the probability-flow ODE solved from T (x_T from the prior) down to eps.

    variable = 't': the ODE dx/dt = f − ½ g² s in the SDE's time (Song et al.).
    variable = 'sigma': the same ODE in the noise-to-signal ratio ς = σ(t)/m(t) and the scaled
    state y = x/m(t). For the three SDEs g² = d(σ²)/dt − 2 a σ² (a = f/x), which turns it into
    dy/dς = ε̂(m y, t(ς)) = −σ s (Song et al., 2021a, eq. 13 in these variables; DDIM's
    deterministic update is its Euler step, Karras et al. 2022's σ-ODE is its VE form). Its
    solutions are close to straight lines in ς away from the data scale, so an adaptive solver
    takes few, large steps there; tolerances apply to y.

    steps = 0: adaptive step size (PID controller, rtol/atol on the RMS norm of the whole
    batch); steps > 0: that many uniform steps in the chosen variable (any solver, Euler
    included). save_every > 0: the path at `save_every + 1` equally spaced times from T to eps
    is returned too (for the animation).

    denoise: one more network evaluation at eps returns Tweedie's estimate of the clean
    sample, E[x(0) | x(eps)] = (x + σ² s(x, eps)) / m (Song et al.'s final denoising step; the
    Euler step from ς(eps) to ς = 0), so that eps can stop the solver before the region of
    small t where the score is steep and the adaptive steps are many."""
    import diffrax

    _check_variable(variable)
    solv = ode_solver(solver)
    if steps <= 0 and solver == "euler":
        raise ValueError("the euler solver has no error estimate: set a fixed number of steps")
    ts = jnp.linspace(sde.T, eps, save_every + 1, dtype=x_T.dtype) if save_every > 0 else None
    if variable == "t":
        field, s0, s1, y0 = probability_flow(sde, score_fn), sde.T, eps, x_T
        save_at = ts
    else:
        field = _sigma_flow(sde, score_fn)
        with jax.ensure_compile_time_eval():
            s0, s1 = (float(sde.noise_ratio(v)) for v in (sde.T, eps))
        y0 = x_T / sde.marginal(sde.T)[0]
        save_at = None if ts is None else sde.noise_ratio(ts)
    if steps > 0:
        controller, dt0 = diffrax.ConstantStepSize(), (s1 - s0) / steps
    else:
        controller, dt0 = diffrax.PIDController(rtol=rtol, atol=atol), None
    saveat = diffrax.SaveAt(ts=save_at) if save_at is not None else diffrax.SaveAt(t1=True)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(field),
        solv,
        s0,
        s1,
        dt0,
        y0,
        stepsize_controller=controller,
        saveat=saveat,
        max_steps=max_steps if steps <= 0 else steps,
    )
    num = sol.stats["num_steps"]
    ys = sol.ys
    if variable == "sigma":
        times = ts if ts is not None else jnp.asarray([eps], x_T.dtype)
        m = sde.marginal(times)[0].astype(x_T.dtype)
        ys = ys * m.reshape(m.shape + (1,) * (ys.ndim - 1))
    path = ys if save_every > 0 else None
    x, nfe = ys[-1], ode_function_evaluations(solv, num)
    if denoise:
        m, std = sde.marginal(eps)
        tt = _times(eps, x.shape[0], x.dtype)
        x = (x + jnp.asarray(std**2, x.dtype) * score_fn(x, tt)) / jnp.asarray(m, x.dtype)
        nfe = nfe + 1
    return ODESample(x, path, num, nfe)


def _check_variable(variable: str) -> None:
    if variable not in ODE_VARIABLES:
        raise ValueError(
            f"unknown ODE variable {variable!r}; valid choices: {', '.join(ODE_VARIABLES)}"
        )


def _sigma_flow(sde: _SDE, score_fn: ScoreFn):
    """The probability-flow ODE in (ς, y = x/m): (ς, y, args) -> dy/dς = −σ(t) s(m y, t),
    t = t(ς) (see `ode_sample`)."""

    def field(r, y, args=None):
        t = sde.time_of_noise_ratio(r)
        m, std = sde.marginal(t)
        tt = _times(t, y.shape[0], y.dtype)
        return -jnp.asarray(std, y.dtype) * score_fn(jnp.asarray(m, y.dtype) * y, tt)

    return field


def log_likelihood(
    sde: _SDE,
    score_fn: ScoreFn,
    x: jax.Array,
    *,
    eps: float = 1e-5,
    method: str = "exact",
    key: jax.Array | None = None,
    noise: str = "rademacher",
    solver: str = "tsit5",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    max_steps: int = 4096,
    prior_logp: Callable[[jax.Array], jax.Array] | None = None,
):
    """log p_eps(x) [n] (nats) by the probability-flow ODE from eps to T, with the divergence
    integrated alongside (`generative.continuous.solve_with_logdet`; method "exact" or
    "hutchinson", which needs `key`; one probe per example, `noise` rademacher or gaussian).
    prior_logp defaults to the SDE's prior. Returns (log p [n], vector-field evaluations)."""
    from generative.continuous import solve_with_logdet

    res = solve_with_logdet(
        probability_flow(sde, score_fn),
        x,
        eps,
        sde.T,
        method=method,
        key=key,
        noise=noise,
        solver=ode_solver(solver),
        rtol=rtol,
        atol=atol,
        max_steps=max_steps,
    )
    prior = sde.prior_logp if prior_logp is None else prior_logp
    return prior(res.y) + res.delta, res.num_evaluations


def bits_per_dim(log_density, dims: int, *, levels: int = 256, scale: float = 2.0):
    """Bits per dimension of 8-bit data from the model's log-density of dequantised data.

    The model sees y = scale · v/levels − scale/2 for v = k + u, k ∈ {0..levels−1} the pixel
    level, u ~ U[0, 1) (uniform dequantisation): y ∈ [−1, 1) for scale = 2. The density of v
    on [0, levels)^D is p_y(y) (scale/levels)^D, and −log₂ of it per dimension,
    −log p_y / (D ln 2) + log₂(levels/scale), bounds the discrete model's NLL in bits/dim in
    expectation over u. log_density: [n] nats -> [n] bits/dim."""
    return -log_density / (dims * math.log(2)) + math.log2(levels / scale)
