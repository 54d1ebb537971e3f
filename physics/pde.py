"""Fourier pseudo-spectral solvers for 1-D periodic PDEs ``u_t = L u + a (u²)_x``.

On a periodic grid of ``n`` points over ``[x0, x0 + length)`` the real FFT diagonalises the
linear part: ``û_t = L(k) û + a (i k) F[u²]``, ``k = 2π m / length``, ``m = 0 … n/2``.

- viscous Burgers ``u_t + u u_x − ν u_xx = 0``: ``L = −ν k²``, ``a = −1/2``;
- Korteweg–de Vries ``u_t + 6 u u_x + u_xxx = 0``: ``L = −(ik)³ = i k³``, ``a = −3``.

Two time integrators, both on the Fourier coefficients:

- ``etdrk4``: exponential time differencing RK4 of Cox & Matthews in the form of Kassam &
  Trefethen (2005): the linear part is integrated exactly, the φ-functions are evaluated by a
  contour mean over ``m`` points of a unit circle around ``h L`` (no cancellation for small
  ``h L``); fixed step ``h`` (at most ``max_step``, dividing every output interval), fourth
  order. One ``lax.scan`` over the output times, a ``fori_loop`` of steps inside.
- ``diffrax``: the integrating factor ``v = e^{−L (t − t_j)} û`` restarted at every output time
  ``t_j`` (so that ``e^{ν k² Δt}`` stays far from overflow), ``v_t = e^{−L s} N(e^{L s} v)``
  solved by diffrax (Dopri8, PID controller, ``rtol``/``atol``) on the real and imaginary parts.

The product ``u²`` is dealiased by the 2/3 rule (modes ``m > n/3`` of ``F[u²]`` dropped);
the Nyquist mode never gets an odd derivative. Closed forms for the tests: the KdV soliton
:func:`kdv_soliton`. Float64 needs ``jax.enable_x64``; otherwise everything runs in float32.
"""

from __future__ import annotations

import functools
import logging

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "EQUATIONS",
    "METHODS",
    "grid",
    "wavenumbers",
    "spectral_derivative",
    "etdrk4_coefficients",
    "etdrk4_states",
    "solve",
    "solve_burgers",
    "solve_kdv",
    "kdv_soliton",
    "burgers_pdefind_initial",
    "kdv_two_soliton_initial",
]

logger = logging.getLogger(__name__)

EQUATIONS = ("burgers", "kdv")
METHODS = ("etdrk4", "diffrax")


def grid(n: int, length: float, x0: float = 0.0) -> np.ndarray:
    """The periodic grid ``x0 + length · j / n``, ``j = 0 … n−1`` (right end excluded). [n]"""
    return x0 + length * np.arange(n) / n


def wavenumbers(n: int, length: float, *, odd: bool = False) -> np.ndarray:
    """``k = 2π m / length`` for the real FFT, ``m = 0 … n//2``; with ``odd`` the Nyquist mode
    (even ``n``) gets ``k = 0``, as an odd derivative of a real field must. [n//2 + 1]"""
    k = 2 * np.pi * np.fft.rfftfreq(n, 1.0 / n) / length
    if odd and n % 2 == 0:
        k[-1] = 0.0
    return k


def spectral_derivative(u, length: float, order: int = 1):
    """``∂^order u / ∂x^order`` of a periodic field sampled on :func:`grid`. u: [..., n]."""
    n = u.shape[-1]
    k = wavenumbers(n, length, odd=order % 2 == 1)
    symbol = (1j * k) ** order
    return jnp.fft.irfft(symbol * jnp.fft.rfft(u, axis=-1), n=n, axis=-1)


def _problem(equation: str, n: int, length: float, nu: float):
    """(linear symbol L [n//2+1] complex128, flux coefficient a, i k for the flux)."""
    if equation not in EQUATIONS:
        raise ValueError(f"unknown equation {equation!r}; valid choices: {list(EQUATIONS)}")
    k_odd = wavenumbers(n, length, odd=True)
    k = wavenumbers(n, length)
    if equation == "burgers":
        lin, a = -nu * k.astype(np.complex128) ** 2, -0.5
    else:
        lin, a = 1j * k_odd**3, -3.0
    return lin, a, 1j * k_odd


def _dealias_mask(n: int, dealias: bool) -> np.ndarray:
    m = np.arange(n // 2 + 1)
    return (m <= n // 3) if dealias else np.ones_like(m, dtype=bool)


def etdrk4_coefficients(lin, h: float, contour_points: int = 64, xp=np):
    """E = e^{hL}, E2 = e^{hL/2}, Q, f1, f2, f3 of Kassam & Trefethen (2005), eq. (2.5), by a
    mean over ``contour_points`` points of the unit circle around each ``hL`` (complex L [m]).
    ``xp``: numpy (host) or jax.numpy (L traced, e.g. a fitted PDE's linear part)."""
    r = xp.exp(2j * np.pi * (np.arange(contour_points) + 0.5) / contour_points)
    z = h * lin[:, None] + r[None, :]
    ez, ez2 = xp.exp(z), xp.exp(z / 2)
    q = h * xp.mean((ez2 - 1) / z, axis=1)
    f1 = h * xp.mean((-4 - z + ez * (4 - 3 * z + z**2)) / z**3, axis=1)
    f2 = h * xp.mean((2 + z + ez * (z - 2)) / z**3, axis=1)
    f3 = h * xp.mean((-4 - 3 * z - z**2 + ez * (4 - z)) / z**3, axis=1)
    return xp.exp(h * lin), xp.exp(h * lin / 2), q, f1, f2, f3


def etdrk4_states(v0, coeffs, nonlinear, num_out: int, substeps: int):
    """ETDRK4 (Cox & Matthews 2002) in Fourier space: ``v_t = L v + N(v)`` from v0 [m] with
    ``coeffs`` of :func:`etdrk4_coefficients` and ``nonlinear`` N, ``substeps`` steps per
    output interval. Returns the Fourier states [num_out + 1, m] (v0 first). Traceable."""
    e, e2, q, f1, f2, f3 = coeffs

    def step(_, v):
        nv = nonlinear(v)
        a = e2 * v + q * nv
        na = nonlinear(a)
        b = e2 * v + q * na
        nb = nonlinear(b)
        c = e2 * a + q * (2 * nb - nv)
        nc = nonlinear(c)
        return e * v + nv * f1 + 2 * (na + nb) * f2 + nc * f3

    def interval(v, _):
        v = jax.lax.fori_loop(0, substeps, step, v)
        return v, v

    _, vs = jax.lax.scan(interval, v0, None, length=num_out)
    return jnp.concatenate([v0[None], vs])


@functools.partial(jax.jit, static_argnames=("n", "num_out", "substeps"))
def _etdrk4_run(v0, coeffs, flux, n: int, num_out: int, substeps: int):
    def nonlinear(v):
        u = jnp.fft.irfft(v, n=n)
        return flux * jnp.fft.rfft(u * u)

    return jnp.fft.irfft(etdrk4_states(v0, coeffs, nonlinear, num_out, substeps), n=n)


def _diffrax_run(v0, lin, flux, n: int, ts, rtol: float, atol: float, max_steps: int):
    lin = jnp.asarray(lin)

    def field(s, y, args):
        v = y[0] + 1j * y[1]
        factor = jnp.exp(lin * s)
        u = jnp.fft.irfft(factor * v, n=n)
        dv = flux * jnp.fft.rfft(u * u) / factor
        return jnp.stack([dv.real, dv.imag])

    def interval(v, dt):
        y0 = jnp.stack([v.real, v.imag])
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(field),
            diffrax.Dopri8(),
            t0=0.0,
            t1=dt,
            dt0=dt / 8,
            y0=y0,
            saveat=diffrax.SaveAt(t1=True),
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
            max_steps=max_steps,
        )
        y = sol.ys[-1]
        v = jnp.exp(lin * dt) * (y[0] + 1j * y[1])
        return v, v

    @jax.jit
    def run(v0, dts):
        _, vs = jax.lax.scan(interval, v0, dts)
        return jnp.fft.irfft(jnp.concatenate([v0[None], vs]), n=n)

    return run(v0, jnp.diff(ts))


def solve(
    equation: str,
    u0,
    ts,
    *,
    length: float,
    nu: float = 0.1,
    method: str = "etdrk4",
    max_step: float = 1e-3,
    dealias: bool = True,
    rtol: float = 1e-11,
    atol: float = 1e-12,
    max_steps: int = 100_000,
):
    """Integrates ``equation`` ('burgers' with viscosity ``nu``, or 'kdv') from ``u(ts[0]) = u0``.

    u0: [n] on :func:`grid` (period ``length``); ts: [T] increasing and, for ``etdrk4``, evenly
    spaced. Returns u(ts): [T, n], float64 under ``jax.enable_x64``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown spectral time integrator {method!r}; valid choices: {METHODS}")
    u0 = jnp.asarray(u0, jnp.result_type(float))
    if u0.ndim != 1:
        raise ValueError(f"u0 must be one field [n], got shape {u0.shape}")
    ts = np.asarray(ts, dtype=np.float64)
    if ts.ndim != 1 or len(ts) < 2 or not np.all(np.diff(ts) > 0):
        raise ValueError("ts must be an increasing 1-D array of at least two times")
    if not np.all(np.isfinite(np.asarray(u0))):
        raise ValueError("u0 contains NaN or infinite values")
    n = u0.shape[0]
    lin, a, ik = _problem(equation, n, length, nu)
    flux = jnp.asarray(a * ik * _dealias_mask(n, dealias))
    v0 = jnp.fft.rfft(u0)
    if method == "etdrk4":
        dts = np.diff(ts)
        if not np.allclose(dts, dts[0], rtol=1e-9, atol=0):
            raise ValueError("method 'etdrk4' needs evenly spaced output times ts")
        substeps = int(np.ceil(dts[0] / max_step - 1e-9))
        h = dts[0] / substeps
        coeffs = tuple(jnp.asarray(c) for c in etdrk4_coefficients(lin, h))
        return _etdrk4_run(v0, coeffs, flux, n, len(ts) - 1, substeps)
    return _diffrax_run(v0, lin, flux, n, jnp.asarray(ts), rtol, atol, max_steps)


def solve_burgers(u0, ts, *, length: float, nu: float = 0.1, **kwargs):
    """``u_t + u u_x − ν u_xx = 0`` on a periodic grid; see :func:`solve`. -> [T, n]"""
    return solve("burgers", u0, ts, length=length, nu=nu, **kwargs)


def solve_kdv(u0, ts, *, length: float, **kwargs):
    """``u_t + 6 u u_x + u_xxx = 0`` on a periodic grid; see :func:`solve`. -> [T, n]"""
    return solve("kdv", u0, ts, length=length, **kwargs)


def kdv_soliton(x, t, c: float, x0: float = 0.0):
    """The KdV soliton ``u = (c/2) sech²(√c/2 (x − x0 − c t))`` (speed c, height c/2)."""
    xi = 0.5 * np.sqrt(c) * (np.asarray(x) - x0 - c * t)
    return 0.5 * c / np.cosh(xi) ** 2


def burgers_pdefind_initial(x):
    """The initial state of the PDE-FIND Burgers data: ``exp(−(x + 2)²)``."""
    return np.exp(-((np.asarray(x) + 2.0) ** 2))


def kdv_two_soliton_initial(x, solitons=((2.0, -20.0), (1.0, -5.0))):
    """A sum of solitons ``Σ (c/2) sech²(√c/2 (x − x0))`` for (c, x0) in ``solitons``. With the
    default pair the faster one (height 1) overtakes the slower (height 1/2) near t = 15."""
    return sum(kdv_soliton(x, 0.0, c, x0) for c, x0 in solitons)
