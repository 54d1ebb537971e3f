"""Equation discovery by sparse regression: SINDy for ODEs, PDE-FIND for PDEs.

Both write the time derivative of the data as a sparse combination of candidate terms,
``u_t = Θ(u) ξ`` with ``Θ`` a library of ``m`` columns evaluated at every sample, and find a
sparse ``ξ`` by sequential thresholding.

Derivatives (``u``: any array, ``axis`` the sampled direction, uniform ``spacing``):

- :func:`finite_difference`: stencils of accuracy order 2 or 4 for any derivative order; the
  central stencil inside, off-centre stencils of the same order near the two ends (or
  periodic wrapping). Weights by :func:`fd_weights` (the Taylor/Vandermonde system).
- :func:`poly_diff`: the derivative at each point of the least-squares polynomial of degree
  ``degree`` fitted to the ``2·width + 1`` nearest samples (PDE-FIND's noisy-data recipe; on a
  uniform grid this is a fixed linear filter, a Savitzky–Golay derivative, so it is one
  correlation per derivative instead of one fit per point). Near the ends the window stops at
  the boundary and the fit is evaluated off-centre.

Libraries: :func:`polynomial_library` (every monomial of total degree ≤ p in k variables,
optionally sin/cos of each variable) and :func:`pde_library` (``u^p · ∂_x^d u`` for
``p ≤ P``, ``d ≤ D``: ``1, u, u², …, u_x, u u_x, …, u^P u_xxx``).

Sparse regression (numpy, float64): :func:`stlsq` (sequentially thresholded least squares /
ridge, SINDy), :func:`stridge` and :func:`train_stridge` (Rudy et al. 2017: columns scaled to
unit 2-norm, STRidge thresholds the scaled coefficients; the tolerance is searched on an 80/20
split of the rows with the loss ``‖y_test − Θ_test ξ‖₂ + ε₀ ‖ξ‖₀``, ``ε₀ = 10⁻³ cond(Θ)``).
Every fit works on the Gram matrix ``ΘᵀΘ`` (m×m) and ``Θᵀy``, formed once: each thresholding
step is then an m×m solve, independent of the 10⁴–10⁵ rows. The problems are tiny and change
shape at every threshold (the support shrinks), so plain numpy beats a jitted program here:
nothing to compile, no padding to a fixed support; the whole PDE-FIND fit on 10⁵ rows takes
milliseconds. JAX generates the data (:mod:`physics.pde`, diffrax).

Pipelines: :func:`sindy` (ODE data [T, k]) and :func:`pde_find` (field data [T, n]);
:func:`run` is the ``physics discover`` command (tables against Rudy et al. and PySINDy).

Model selection without the true equation (:func:`select_pde`): PDE-FIND over a grid of
derivative windows and ε₀; each distinct PDE found is integrated forward from smoothed states of
the data (:func:`simulate_pde`: pseudo-spectral, ETDRK4, JAX) and scored against the data by an
information criterion (:func:`information_criterion`, AICc by default).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import itertools
import json
import logging
import math
import pathlib
import time
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

__all__ = [
    "EQUATIONS",
    "PDE_EQUATIONS",
    "ODE_EQUATIONS",
    "DIFF_METHODS",
    "METHODS",
    "TRUE_COEFFICIENTS",
    "PUBLISHED",
    "fd_weights",
    "finite_difference",
    "poly_diff",
    "polynomial_library",
    "pde_library",
    "stlsq",
    "stridge",
    "train_stridge",
    "Fit",
    "sindy",
    "pde_find",
    "format_equation",
    "coefficient_errors",
    "SELECTION_GRID_KEYS",
    "DEFAULT_SELECTION_GRID",
    "CRITERIA",
    "simulate_pde",
    "spectral_smooth",
    "information_criterion",
    "Selection",
    "select_pde",
    "add_noise",
    "pde_dataset",
    "ode_dataset",
    "pysindy_pde_find",
    "discover_equation",
    "run",
]

logger = logging.getLogger(__name__)

PDE_EQUATIONS = ("burgers", "kdv")
ODE_EQUATIONS = ("lorenz", "pendulum")
EQUATIONS = PDE_EQUATIONS + ODE_EQUATIONS
DIFF_METHODS = ("fd", "poly")
METHODS = ("ours", "pysindy")

# u_t = Σ ξ_term · term for the PDEs; x' = Σ ξ_term · term per state variable for the ODEs.
TRUE_COEFFICIENTS = {
    "burgers": {"u_t": {"u u_x": -1.0, "u_xx": 0.1}},
    "kdv": {"u_t": {"u u_x": -6.0, "u_xxx": -1.0}},
    "lorenz": {
        "x'": {"x": -10.0, "y": 10.0},
        "y'": {"x": 28.0, "y": -1.0, "x z": -1.0},
        "z'": {"x y": 1.0, "z": -8.0 / 3.0},
    },
    "pendulum": {
        "θ'": {"ω": 1.0},
        "ω'": {"sin θ": -((2 * np.pi / 12) ** 2), "ω": -0.2},
    },
}

# Rudy et al. (2017), Science Advances, table 1: coefficient error mean ± std (%), clean / 1 %.
PUBLISHED = {
    ("burgers", 0.0): (0.15, 0.06),
    ("burgers", 0.01): (0.8, 0.6),
    ("kdv", 0.0): (1.0, 0.2),
    ("kdv", 0.01): (7.0, 5.0),
}


def _check_finite(name: str, a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contain NaN or infinite values; clean or drop those samples")
    return a


# ----------------------------------------------------------------------------- derivatives


def fd_weights(offsets: Sequence[float], order: int) -> np.ndarray:
    """Weights ``w`` with ``f^(order)(0) ≈ Σ_j w_j f(offsets_j)`` (unit spacing), exact for
    polynomials of degree < len(offsets): the solution of ``Σ_j w_j s_j^i / i! = δ_{i,order}``."""
    s = np.asarray(offsets, dtype=np.float64)
    n = len(s)
    if order >= n:
        raise ValueError(f"a derivative of order {order} needs more than {n} stencil points")
    a = np.stack([s**i / math.factorial(i) for i in range(n)])
    rhs = np.zeros(n)
    rhs[order] = 1.0
    return np.linalg.solve(a, rhs)


def _move(u, axis):
    return np.moveaxis(np.asarray(u, dtype=np.float64), axis, -1)


def finite_difference(
    u, spacing: float, order: int = 1, *, accuracy: int = 2, axis: int = -1, periodic=False
):
    """``∂^order u`` along ``axis`` by finite differences of accuracy order ``accuracy`` (2 or
    4): error O(spacing^accuracy) at every point, boundaries included. Same shape as ``u``.

    Inside: the central stencil of ``2⌊(order+1)/2⌋ − 1 + accuracy`` points. Within its
    half-width of an end: ``order + accuracy`` consecutive points starting at that end.
    ``periodic``: the central stencil everywhere, wrapping around.
    """
    if accuracy not in (2, 4):
        raise ValueError(f"finite-difference accuracy must be 2 or 4, got {accuracy}")
    if order < 1:
        raise ValueError(f"derivative order must be >= 1, got {order}")
    v = _move(u, axis)
    n = v.shape[-1]
    half = (2 * ((order + 1) // 2) - 1 + accuracy - 1) // 2
    central = fd_weights(np.arange(-half, half + 1), order) / spacing**order
    if periodic:
        out = sum(w * np.roll(v, -j, axis=-1) for j, w in zip(range(-half, half + 1), central))
        return np.moveaxis(out, -1, axis)
    width = order + accuracy
    if n < max(width, 2 * half + 1):
        raise ValueError(f"{n} samples are too few for this stencil (need {width})")
    out = ndimage.correlate1d(v, central, axis=-1, mode="constant")
    for i in range(half):  # the first and last `half` points: one-sided stencils
        w = fd_weights(np.arange(width) - i, order) / spacing**order
        out[..., i] = v[..., :width] @ w
        out[..., n - 1 - i] = v[..., n - width :] @ (w[::-1] * (-1) ** order)
    return np.moveaxis(out, -1, axis)


@functools.lru_cache(maxsize=512)
def _poly_weights(width: int, degree: int, order: int, at: float) -> np.ndarray:
    """Weights over offsets −width…width giving the ``order``-th derivative (unit spacing) at
    offset ``at`` of the least-squares polynomial of degree ``degree`` (Chebyshev basis in
    ``s = offset / width`` for conditioning)."""
    s = np.arange(-width, width + 1) / width
    vander = np.polynomial.chebyshev.chebvander(s, degree)  # [2w+1, degree+1]
    fit = np.linalg.pinv(vander)  # coefficients = fit @ u
    basis_deriv = np.array(
        [
            np.polynomial.chebyshev.chebval(
                at / width, np.polynomial.chebyshev.chebder(np.eye(degree + 1)[k], order)
            )
            for k in range(degree + 1)
        ]
    )
    w = basis_deriv @ fit / width**order
    w.setflags(write=False)  # cached: shared between calls
    return w


def poly_diff(u, spacing: float, order: int = 1, *, degree: int = 3, width: int = 5, axis=-1):
    """``∂^order u`` along ``axis`` from local least-squares polynomials: at each point, the
    polynomial of degree ``degree`` fitted to the ``2·width + 1`` samples around it, then
    differentiated there. Near the ends the window is the first (last) ``2·width + 1``
    samples. Same shape as ``u``; exact for polynomials of degree ≤ ``degree``."""
    if not 0 < order <= degree:
        raise ValueError(f"derivative order must be in 1..degree ({degree}), got {order}")
    if degree > 2 * width:
        raise ValueError(f"degree {degree} needs a window width >= {math.ceil(degree / 2)}")
    v = _move(u, axis)
    n = v.shape[-1]
    if n < 2 * width + 1:
        raise ValueError(f"{n} samples are too few for a window of {2 * width + 1}")
    centre = _poly_weights(width, degree, order, 0.0) / spacing**order
    out = ndimage.correlate1d(v, centre, axis=-1, mode="constant")
    for i in range(width):
        w = _poly_weights(width, degree, order, float(i - width)) / spacing**order
        out[..., i] = v[..., : 2 * width + 1] @ w
        w = _poly_weights(width, degree, order, float(width - i)) / spacing**order
        out[..., n - 1 - i] = v[..., n - 2 * width - 1 :] @ w
    return np.moveaxis(out, -1, axis)


# ----------------------------------------------------------------------------- libraries


def _monomial_name(names, powers) -> str:
    parts = [n if p == 1 else f"{n}^{p}" for n, p in zip(names, powers) if p > 0]
    return " ".join(parts) if parts else "1"


def polynomial_library(
    x, degree: int, *, include_bias: bool = True, names: Sequence[str] | None = None, trig=False
):
    """Every monomial of total degree 1…``degree`` (and 1 with ``include_bias``) in the columns
    of ``x`` [n, k], ordered by degree; with ``trig``, then ``sin x_i, cos x_i``.

    Returns (Θ [n, m], names [m]); e.g. k = 2, degree 2: 1, x, y, x^2, x y, y^2.
    """
    x = _check_finite("the data", x)
    if x.ndim != 2:
        raise ValueError(f"x must be [samples, variables], got shape {x.shape}")
    k = x.shape[1]
    names = list(names) if names is not None else [f"x{i}" for i in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} names for {k} variables")
    cols, out_names = [], []
    if include_bias:
        cols.append(np.ones(x.shape[0]))
        out_names.append("1")
    for deg in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(range(k), deg):
            powers = np.bincount(combo, minlength=k)
            cols.append(np.prod(x ** powers[None, :], axis=1))
            out_names.append(_monomial_name(names, powers))
    if trig:
        for i in range(k):
            cols += [np.sin(x[:, i]), np.cos(x[:, i])]
            out_names += [f"sin {names[i]}", f"cos {names[i]}"]
    if not cols:
        raise ValueError(
            "the term library is empty: use degree >= 1, include_bias=True or trig=True"
        )
    return np.stack(cols, axis=1), out_names


def _pde_term(p: int, d: int) -> str:
    power = "" if p == 0 else ("u" if p == 1 else f"u^{p}")
    deriv = "" if d == 0 else "u_" + "x" * d
    return " ".join(s for s in (power, deriv) if s) or "1"


def pde_library(u, derivatives: Sequence, max_power: int, *, include_bias: bool = True):
    """``u^p · ∂_x^d u`` for ``d = 0 … len(derivatives)`` (``∂^0 u = 1``: plain powers),
    ``p = 0 … max_power``, ordered by d then p (Rudy et al.'s order).

    u and every derivative: the same shape; they are flattened. derivatives[d−1] = ∂_x^d u.
    Returns (Θ [u.size, m], names [m]) with names like '1', 'u^2', 'u_xx', 'u u_x'.
    """
    u = _check_finite("the data", u).ravel()
    derivs = [_check_finite("the derivatives", d).ravel() for d in derivatives]
    if any(d.shape != u.shape for d in derivs):
        raise ValueError("every derivative must have the shape of u")
    terms = [
        (p, d)
        for d in range(len(derivs) + 1)
        for p in range(max_power + 1)
        if include_bias or (d, p) != (0, 0)
    ]
    if not terms:
        raise ValueError(
            "the term library is empty: use max_power >= 1, derivatives or include_bias=True"
        )
    powers = [np.ones_like(u), u] + [u**p for p in range(2, max_power + 1)]
    theta = np.empty((u.size, len(terms)))
    for j, (p, d) in enumerate(terms):
        if d == 0:
            theta[:, j] = powers[p]
        else:
            np.multiply(powers[p], derivs[d - 1], out=theta[:, j])
    return theta, [_pde_term(p, d) for p, d in terms]


# ----------------------------------------------------------------------------- sparse regression


def _solve(g, b, idx, alpha):
    sub = g[np.ix_(idx, idx)]
    if alpha:
        sub = sub + alpha * np.eye(len(idx))
    try:
        return np.linalg.solve(sub, b[idx])
    except np.linalg.LinAlgError:  # collinear columns: the minimum-norm solution
        return np.linalg.lstsq(sub, b[idx], rcond=None)[0]


def _threshold_fit(g, b, tol, alpha, max_iter, unbias):
    """Sequential thresholding on the normal equations ``g w = b`` (g = ΘᵀΘ, b = Θᵀy): ridge
    fit, drop |w_i| < tol, refit on the rest, until the support stops changing; last, plain
    least squares on the support (``unbias``). An empty support gives w = 0."""
    d = len(b)
    big = np.arange(d)
    w = np.zeros(d)
    w[big] = _solve(g, b, big, alpha)
    for _ in range(max_iter):
        keep = big[np.abs(w[big]) >= tol]
        if len(keep) == len(big):
            break
        w[:] = 0.0
        big = keep
        if len(big) == 0:
            break
        w[big] = _solve(g, b, big, alpha)
    if unbias and len(big):
        w[:] = 0.0
        w[big] = _solve(g, b, big, 0.0)
    return w


def _check_system(theta, y):
    theta = _check_finite("the library values", theta)
    y = _check_finite("the derivatives", y)
    if theta.ndim != 2 or theta.shape[1] == 0:
        raise ValueError(f"the term library is empty (Θ has shape {theta.shape})")
    if y.shape[0] != theta.shape[0]:
        raise ValueError(f"Θ has {theta.shape[0]} rows but y has {y.shape[0]}")
    return theta, y


def stlsq(
    theta, y, threshold: float, *, alpha: float = 0.0, max_iter: int = 20, unbias: bool = True
):
    """Sequentially thresholded least squares (SINDy): minimise ``‖y − Θξ‖² + α‖ξ‖²``,
    zero every ``|ξ_i| < threshold`` and refit on the others until the support is stable.

    theta: [n, m]; y: [n] or [n, k] (one fit per column). Returns ξ: [m] or [m, k].
    """
    theta, y = _check_system(theta, y)
    g = theta.T @ theta
    b = theta.T @ y
    if y.ndim == 1:
        return _threshold_fit(g, b, threshold, alpha, max_iter, unbias)
    return np.stack(
        [_threshold_fit(g, b[:, j], threshold, alpha, max_iter, unbias) for j in range(y.shape[1])],
        axis=1,
    )


def stridge(theta, y, tol: float, *, alpha: float = 1e-5, max_iter: int = 10):
    """STRidge (Rudy et al. 2017) on one target: columns scaled to unit 2-norm, ridge with
    ``alpha`` and threshold ``tol`` on the scaled coefficients, least squares on the final
    support; returns ξ [m] in the original units."""
    theta, y = _check_system(theta, y)
    scale = _column_scale(theta)
    g = (theta.T @ theta) * np.outer(scale, scale)
    b = (theta.T @ y) * scale
    return _threshold_fit(g, b, tol, alpha, max_iter, True) * scale


def _column_scale(theta):
    norms = np.linalg.norm(theta, axis=0)
    return np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0)


def _condition_number(gram) -> float:
    """cond(Θ) = sqrt(λ_max / λ_min) of ΘᵀΘ."""
    lam = np.sort(np.abs(np.linalg.eigvalsh(gram)))
    return float(np.sqrt(lam[-1] / lam[0])) if lam[0] > 0 else float("inf")


def train_stridge(
    theta,
    y,
    *,
    alpha: float = 1e-5,
    d_tol: float = 1.0,
    max_iter: int = 25,
    stridge_iter: int = 10,
    l0_penalty: float | None = None,
    split: float = 0.8,
    seed: int = 0,
):
    """STRidge with its tolerance searched on a held-out split (Rudy et al. 2017, TrainSTRidge).

    The rows are split at random (``seed``) into ``split`` for fitting and the rest for the
    loss ``‖y_test − Θ_test ξ‖₂ + l0_penalty · ‖ξ‖₀`` (default ``l0_penalty = 10⁻³ cond(Θ)``).
    Starting from the least-squares fit and ``tol = d_tol``, the tolerance grows by ``d_tol``
    while the loss does not increase; when it does, it steps back by ``2 d_tol`` and the step
    shrinks to ``2 d_tol / (iterations left)``. Tolerances apply to the coefficients of the
    columns scaled to unit norm (on the fitting rows).

    theta: [n, m]; y: [n]. Returns (ξ [m], info {'tolerance', 'l0_penalty', 'loss'}).
    """
    grams = _split_grams(theta, y, split, seed)
    return _train_stridge_grams(grams, alpha, d_tol, max_iter, stridge_iter, l0_penalty)


def _split_grams(theta, y, split, seed):
    """TrainSTRidge's sufficient statistics: Gram matrices of all rows and of the held-out rows
    (a random ``1 − split`` of them, ``seed``)."""
    theta, y = _check_system(theta, y)
    if y.ndim != 1:
        raise ValueError(f"y must be one target [n], got shape {y.shape}")
    n = theta.shape[0]
    perm = np.random.default_rng(seed).permutation(n)
    n_train = int(n * split)
    if not 0 < n_train < n:
        raise ValueError(f"split {split} leaves no fitting or no held-out rows out of {n}")
    test = np.sort(perm[n_train:])
    x_te, y_te = theta[test], y[test]
    g_all, b_all = theta.T @ theta, theta.T @ y
    return g_all, b_all, x_te.T @ x_te, x_te.T @ y_te, float(y_te @ y_te)


def _train_stridge_grams(grams, alpha, d_tol, max_iter, stridge_iter, l0_penalty):
    g_all, b_all, g_te, b_te, yy_te = grams
    # the fitting rows' Gram matrix: all rows' minus the held-out rows'
    g_tr, b_tr = g_all - g_te, b_all - b_te
    scale = 1.0 / np.sqrt(np.maximum(np.diag(g_tr), np.finfo(float).tiny))
    scale[np.diag(g_tr) <= 0] = 0.0
    g = g_tr * np.outer(scale, scale)
    b = b_tr * scale
    if l0_penalty is None:
        l0_penalty = 1e-3 * _condition_number(g_all)

    def loss(w):  # ‖y_te − Θ_te w‖₂ from the held-out Gram matrix
        r2 = yy_te - 2 * (w @ b_te) + w @ g_te @ w
        return float(np.sqrt(max(r2, 0.0)) + l0_penalty * np.count_nonzero(w))

    w_best = np.linalg.lstsq(g, b, rcond=None)[0] * scale
    err_best, tol_best, tol = loss(w_best), 0.0, float(d_tol)
    d_tol = float(d_tol)
    for it in range(max_iter):
        w = _threshold_fit(g, b, tol, alpha, stridge_iter, True) * scale
        err = loss(w)
        if err <= err_best:
            w_best, err_best, tol_best = w, err, tol
            tol += d_tol
        else:
            tol = max(0.0, tol - 2 * d_tol)
            d_tol = 2 * d_tol / (max_iter - it)
            tol += d_tol
    return w_best, {"tolerance": tol_best, "l0_penalty": float(l0_penalty), "loss": err_best}


# ----------------------------------------------------------------------------- pipelines


@dataclasses.dataclass
class Fit:
    """A discovered model: ``lhs[j] = Σ_i coefficients[i, j] · terms[i]``."""

    coefficients: np.ndarray  # [m, k]
    terms: list[str]
    lhs: list[str]
    seconds: float = 0.0
    info: dict = dataclasses.field(default_factory=dict)

    def equations(self) -> dict[str, dict[str, float]]:
        """{lhs: {term: coefficient}} over the non-zero coefficients."""
        return {
            name: {t: float(c) for t, c in zip(self.terms, self.coefficients[:, j]) if c != 0}
            for j, name in enumerate(self.lhs)
        }

    def __str__(self) -> str:
        return "; ".join(format_equation(c, lhs) for lhs, c in self.equations().items())


def format_equation(coefficients: dict[str, float], lhs: str = "u_t", digits: int = 4) -> str:
    """'u_t = -1.0009 u u_x + 0.1002 u_xx' from {term: coefficient}."""
    if not coefficients:
        return f"{lhs} = 0"
    parts = []
    for i, (term, c) in enumerate(coefficients.items()):
        sign = "-" if c < 0 else "+"
        mag = f"{abs(c):.{digits}g}"
        body = mag if term == "1" else f"{mag} {term}"
        parts.append((f"-{body}" if sign == "-" else body) if i == 0 else f"{sign} {body}")
    return f"{lhs} = " + " ".join(parts)


def sindy(
    x,
    dt: float,
    *,
    degree: int = 2,
    threshold: float = 0.1,
    alpha: float = 0.0,
    accuracy: int = 4,
    trig: bool = False,
    include_bias: bool = True,
    names: Sequence[str] | None = None,
) -> Fit:
    """SINDy (Brunton et al. 2016) on one trajectory x [T, k] sampled every ``dt``: ẋ by
    finite differences (``accuracy`` 2 or 4), Θ = :func:`polynomial_library`, ξ = :func:`stlsq`.
    """
    t0 = time.perf_counter()
    x = _check_finite("the data", x)
    if x.ndim != 2:
        raise ValueError(f"x must be [time, variables], got shape {x.shape}")
    names = list(names) if names is not None else [f"x{i}" for i in range(x.shape[1])]
    xdot = finite_difference(x, dt, 1, accuracy=accuracy, axis=0)
    theta, terms = polynomial_library(x, degree, include_bias=include_bias, names=names, trig=trig)
    xi = stlsq(theta, xdot, threshold, alpha=alpha)
    return Fit(xi, terms, [f"{n}'" for n in names], time.perf_counter() - t0)


def pde_find(
    u,
    dx: float,
    dt: float,
    *,
    max_derivative: int = 3,
    max_power: int = 3,
    diff: str = "fd",
    accuracy: int = 2,
    periodic: bool = False,
    deg_x: int = 4,
    deg_t: int = 4,
    width_x: int = 10,
    width_t: int = 10,
    alpha: float = 1e-5,
    d_tol: float = 1.0,
    max_iter: int = 25,
    stridge_iter: int = 10,
    l0_penalty: float | None = None,
    split: float = 0.8,
    seed: int = 0,
) -> Fit:
    """PDE-FIND (Rudy et al. 2017) on a field u [T, n] (time first, uniform dt and dx).

    ``diff='fd'``: u_t and ∂_x^d u by :func:`finite_difference` (``accuracy``; ``periodic``
    in x), every sample used. ``diff='poly'``: by :func:`poly_diff` (degree ``deg_t`` over
    ``2·width_t + 1`` times, ``deg_x`` over ``2·width_x + 1`` points), and the ``width_t`` /
    ``width_x`` samples nearest each end dropped. Library :func:`pde_library` (``max_power``,
    ``max_derivative``), fit :func:`train_stridge`.
    """
    t0 = time.perf_counter()
    u = _check_finite("the data", u)
    if u.ndim != 2:
        raise ValueError(f"u must be [time, space], got shape {u.shape}")
    if diff not in DIFF_METHODS:
        raise ValueError(f"unknown derivative method {diff!r}; valid choices: {DIFF_METHODS}")
    if diff == "fd":
        ut = finite_difference(u, dt, 1, accuracy=accuracy, axis=0)
        derivs = [
            finite_difference(u, dx, d, accuracy=accuracy, axis=1, periodic=periodic)
            for d in range(1, max_derivative + 1)
        ]
        keep = (slice(None), slice(None))
    else:
        if deg_x < max_derivative:
            raise ValueError(f"deg_x ({deg_x}) must be >= max_derivative ({max_derivative})")
        ut = poly_diff(u, dt, 1, degree=deg_t, width=width_t, axis=0)
        derivs = [
            poly_diff(u, dx, d, degree=deg_x, width=width_x, axis=1)
            for d in range(1, max_derivative + 1)
        ]
        keep = (slice(width_t, u.shape[0] - width_t), slice(width_x, u.shape[1] - width_x))
    theta, terms = pde_library(u[keep], [d[keep] for d in derivs], max_power)
    xi, info = train_stridge(
        theta,
        ut[keep].ravel(),
        alpha=alpha,
        d_tol=d_tol,
        max_iter=max_iter,
        stridge_iter=stridge_iter,
        l0_penalty=l0_penalty,
        split=split,
        seed=seed,
    )
    return Fit(xi[:, None], terms, ["u_t"], time.perf_counter() - t0, info)


def coefficient_errors(found: dict[str, dict[str, float]], true: dict[str, dict[str, float]]):
    """Relative errors (%) of the true terms' coefficients (a missing term counts 100 %), and
    whether the support is exactly the true one. -> (mean, std, exact, errors)."""
    errs = []
    exact = True
    for lhs, terms in true.items():
        got = found.get(lhs, {})
        exact &= set(got) == set(terms)
        for term, c in terms.items():
            errs.append(100.0 * abs(got.get(term, 0.0) - c) / abs(c))
    errs = np.asarray(errs)
    return float(errs.mean()), float(errs.std()), bool(exact), errs


# ----------------------------------------------------------------------------- model selection

SELECTION_GRID_KEYS = ("deg_x", "width_x", "deg_t", "width_t", "l0_penalty")
CRITERIA = ("aicc", "aic", "bic")
_CRITERION_NAMES = {"aicc": "AICc", "aic": "AIC", "bic": "BIC"}
DEFAULT_SELECTION_GRID = {
    "deg_x": (4, 5, 6),
    "width_x": (8, 10, 12, 14, 16),
    "deg_t": (3, 5),
    "width_t": (5, 10),
    "l0_penalty": (0.0, 0.5, 2.0, 5.0),  # 0: Rudy et al.'s 1e-3 cond(Θ)
}


def _library_index(max_power: int, max_derivative: int) -> list[tuple[int, int]]:
    """(p, d) of each column of :func:`pde_library` with the bias: d-major, then p."""
    return [(p, d) for d in range(max_derivative + 1) for p in range(max_power + 1)]


def _coefficient_grid(coefficients, max_power, max_derivative) -> np.ndarray:
    """{term name: ξ} -> ξ [D+1, P+1] indexed [d, p]; P, D: at least those the names use."""
    known = {_pde_term(p, d): (p, d) for d in range(9) for p in range(9)}
    unknown = [t for t in coefficients if t not in known]
    if unknown:
        raise ValueError(
            f"unknown PDE term {unknown[0]!r}; valid terms look like "
            "'1', 'u', 'u^2', 'u_x', 'u u_xx', 'u^2 u_xxx' (u^p times ∂_x^d u)"
        )
    used = [known[t] for t, c in coefficients.items() if c != 0]
    p_max = max([max_power or 1, 1] + [p for p, _ in used])
    d_max = max([max_derivative or 0] + [d for _, d in used])
    c = np.zeros((d_max + 1, p_max + 1))
    for t, v in coefficients.items():
        p, d = known[t]
        if v != 0:
            c[d, p] = float(v)
    return c


@functools.cache
def _library_integrator():
    """The jitted ETDRK4 integrator of ``u_t = Σ c[d, p] u^p ∂_x^d u`` (see
    :func:`simulate_pde`; the scheme of :mod:`physics.pde`), compiled once per (grid, steps,
    library size, batch)."""
    import jax
    import jax.numpy as jnp

    from physics import pde

    def run(c, v0, h, nsub, length, n, num_out):
        nd, npow = c.shape
        modes = jnp.arange(n // 2 + 1)
        mask = modes <= n // 3
        ik = jnp.where(mask, 2j * jnp.pi * modes / length, 0.0)
        # linear part (exact): u and ∂_x^d u; the rest (1, u^p with p >= 2, u^p ∂_x^d u) is N
        lin = c[0, 1] + sum(c[d, 0] * ik**d for d in range(1, nd))
        lin = jnp.where(mask, lin, 0.0)
        coeffs = pde.etdrk4_coefficients(lin, h, contour_points=32, xp=jnp)

        def nonlinear(v):
            u = jnp.fft.irfft(v, n=n)
            powers = [jnp.ones_like(u), u] + [u**p for p in range(2, npow)]
            out = c[0, 0] * powers[0] + sum(c[0, p] * powers[p] for p in range(2, npow))
            for d in range(1, nd):
                factor = sum(c[d, p] * powers[p] for p in range(1, npow))
                out = out + factor * jnp.fft.irfft(ik**d * v, n=n)
            return jnp.where(mask, jnp.fft.rfft(out), 0.0)

        def one(v):
            return pde.etdrk4_states(jnp.where(mask, v, 0.0), coeffs, nonlinear, num_out, nsub)

        return jax.vmap(one)(v0)

    return jax.jit(run, static_argnames=("n", "num_out"))


def simulate_pde(
    coefficients: dict[str, float],
    u0,
    dt: float,
    num_steps: int,
    length: float,
    *,
    max_power: int | None = None,
    max_derivative: int | None = None,
    modes: int | None = None,
    max_step: float = 0.01,
    safety: float = 2.0,
    max_substeps: int = 2000,
) -> np.ndarray:
    """Integrates a discovered PDE ``u_t = Σ_term ξ_term · term`` (terms of :func:`pde_library`:
    ``u^p ∂_x^d u``) on the periodic grid of ``u0`` (period ``length``), pseudo-spectrally.

    Fourier modes ``m ≤ modes`` (default and at most ``n/3``: the 2/3 dealiasing rule) on a
    grid of ``3·modes`` points (rounded up to even); derivatives ``(ik)^d`` by FFT. The linear
    terms (``u``, ``∂_x^d u``) are integrated exactly by ETDRK4 (Cox & Matthews, φ-functions by
    Kassam & Trefethen's contour mean, as :func:`physics.pde.solve`), the others explicitly with
    the fixed step ``h = min(max_step, safety / ρ)``, ``ρ = Σ |ξ_pd| (1.5 max|u0|)^p k_max^d``
    over the nonlinear terms (their largest rate; ``p · max|u|^(p−1)`` for ``u^p``). A model
    needing more than ``max_substeps`` steps per output interval is refused (ValueError); one
    that blows up returns non-finite values. Float64.

    coefficients: {term name: ξ}; u0: [n] or [B, n]; returns u at ``t = 0, dt, …, num_steps·dt``:
    [num_steps + 1, n] or [B, num_steps + 1, n] (on the grid of u0).
    """
    import jax
    import jax.numpy as jnp

    c = _coefficient_grid(coefficients, max_power, max_derivative)
    u0 = _check_finite("the initial states", u0)
    single = u0.ndim == 1
    u0 = u0[None] if single else u0
    if u0.ndim != 2:
        raise ValueError(f"u0 must be [n] or [batch, n], got shape {u0.shape}")
    if num_steps < 1 or dt <= 0 or length <= 0:
        raise ValueError("num_steps must be >= 1, dt and length > 0")
    n = u0.shape[-1]
    modes = n // 3 if modes is None else max(1, min(int(modes), n // 3))
    ns = 3 * modes + (3 * modes) % 2
    kmax = 2 * np.pi * modes / length
    umax = 1.5 * float(np.abs(u0).max())
    rho = sum(
        abs(c[d, p]) * (p * umax ** (p - 1) if d == 0 else umax**p * kmax**d)
        for d in range(c.shape[0])
        for p in range(c.shape[1])
        if (d == 0 and p >= 2) or (d >= 1 and p >= 1)
    )
    h = min(max_step, dt, safety / rho if rho > 0 else np.inf)
    nsub = int(math.ceil(dt / h - 1e-9))
    if nsub > max_substeps:
        raise ValueError(
            f"this PDE needs {nsub} steps per output interval (> max_substeps = {max_substeps})"
        )
    v0 = np.fft.rfft(u0, axis=-1)[:, : ns // 2 + 1] * (ns / n)
    with jax.enable_x64(True):
        v = _library_integrator()(
            jnp.asarray(c), jnp.asarray(v0), dt / nsub, nsub, float(length), n=ns, num_out=num_steps
        )
        v = np.asarray(v)
    full = np.zeros(v.shape[:-1] + (n // 2 + 1,), dtype=np.complex128)
    full[..., : ns // 2 + 1] = v * (n / ns)
    out = np.fft.irfft(full, n=n, axis=-1)
    return out[0] if single else out


def spectral_smooth(u, *, threshold: float = 3.0):
    """Low-pass filter of noisy periodic fields u [..., n] at the noise floor: with ``S_m`` the
    power of Fourier mode m averaged over the leading axes and ``σ²`` the median of ``S_m`` over
    the upper half of the modes (white noise there), the modes ``m ≥ m*`` are dropped, ``m*``
    the first mode ``m ≥ 1`` with ``S_m < threshold · σ²``. Returns (smoothed u, m*)."""
    u = _check_finite("the data", u)
    n = u.shape[-1]
    f = np.fft.rfft(u, axis=-1)
    power = np.mean(np.abs(f.reshape(-1, f.shape[-1])) ** 2, axis=0)
    floor = np.median(power[len(power) // 2 :])
    below = np.flatnonzero(power[1:] < threshold * floor) + 1  # the mean (m = 0) always kept
    cutoff = int(below[0]) if len(below) else len(power)
    f[..., cutoff:] = 0.0
    return np.fft.irfft(f, n=n, axis=-1), cutoff


def information_criterion(rss: float, n: int, k: int, criterion: str = "aicc") -> float:
    """Gaussian-likelihood criteria of a model with ``k`` terms whose predictions leave the
    residual sum of squares ``rss`` over ``n`` values: ``aic = n log(rss/n) + 2k``, ``aicc =
    aic + 2k(k+1)/(n−k−1)``, ``bic = n log(rss/n) + k log n``. Lower is better; inf if rss is
    not finite."""
    if criterion not in CRITERIA:
        raise ValueError(f"unknown information criterion {criterion!r}; valid choices: {CRITERIA}")
    if not np.isfinite(rss):
        return float("inf")
    fit = n * math.log(max(rss, np.finfo(float).tiny) / n)
    if criterion == "bic":
        return fit + k * math.log(n)
    aic = fit + 2 * k
    return aic + (2 * k * (k + 1) / (n - k - 1) if criterion == "aicc" else 0.0)


@dataclasses.dataclass
class Selection:
    """The outcome of :func:`select_pde`: the chosen fit (``fit.info['settings']`` holds its
    derivative windows and ε₀), and one row per candidate of the grid."""

    fit: Fit
    settings: dict
    candidates: list[dict]
    seconds: float = 0.0

    def table(self) -> list[dict]:
        """The candidates, best score first."""
        return sorted(self.candidates, key=lambda r: (r["score"], r["k"]))


def _selection_grid(grid) -> dict[str, tuple]:
    grid = dict(grid or {})
    for key in grid:
        if key not in SELECTION_GRID_KEYS:
            raise ValueError(
                f"unknown selection grid key {key!r}; valid choices: {list(SELECTION_GRID_KEYS)}"
            )
    out = {}
    for key in SELECTION_GRID_KEYS:
        values = tuple(grid.get(key, DEFAULT_SELECTION_GRID[key]))
        if not values:
            raise ValueError(f"the selection grid {key!r} is empty; give at least one value")
        if key == "l0_penalty":
            ok = all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in values)
            valid = "numbers >= 0 (0: 1e-3 cond(Θ))"
        else:
            ok = all(isinstance(v, (int, np.integer)) and v >= 1 for v in values)
            valid = "positive integers"
        if not ok:
            raise ValueError(f"the selection grid {key!r} must hold {valid}, got {values}")
        out[key] = values
    return out


def select_pde(
    u,
    dx: float,
    dt: float,
    *,
    grid: dict | None = None,
    max_derivative: int = 3,
    max_power: int = 3,
    alpha: float = 1e-5,
    d_tol: float = 1.0,
    max_iter: int = 25,
    stridge_iter: int = 10,
    split: float = 0.8,
    seed: int = 0,
    horizon: int = 10,
    starts: int = 8,
    criterion: str = "aicc",
    smooth_threshold: float = 3.0,
    resolution: float = 2.0,
) -> Selection:
    """PDE-FIND with its derivative windows and ε₀ chosen without the true equation: every
    candidate is scored by how well the PDE it found predicts the data forward in time.

    1. Candidates: each combination of ``grid`` (keys ``deg_x, width_x, deg_t, width_t``, the
       polynomial derivative windows of :func:`pde_find`, and ``l0_penalty``, ε₀ of
       :func:`train_stridge`, 0 meaning 10⁻³ cond(Θ); defaults :data:`DEFAULT_SELECTION_GRID`)
       is one :func:`pde_find` fit with ``diff='poly'``; windows too narrow for their degree or
       for ``max_derivative`` are skipped.
    2. Candidates with the same fit (same support and coefficients: e.g. ε₀ values ending at
       the same support from one window) form one group, integrated once.
    3. Score: the data u [T, n] (periodic in x, period ``n·dx``) are low-passed at the noise
       floor (:func:`spectral_smooth`, cutoff ``m*``); from the smoothed state at ``starts``
       times spread over ``[0, T − 1 − horizon]`` each group's PDE is integrated for
       ``horizon`` output steps (:func:`simulate_pde` with ``resolution · m*`` modes); RSS =
       Σ (prediction − data)² over the ``N = starts · horizon · n`` noisy values predicted;
       score = :func:`information_criterion` (``criterion``: aicc, aic or bic) with k = the
       number of terms. A PDE that blows up or is too stiff scores inf.
    4. The candidate of lowest score (fewer terms on a tie) is returned; its fit is exactly
       ``pde_find(u, dx, dt, diff='poly', **settings)``.

    Returns a :class:`Selection` (chosen fit, its settings, a row per candidate: settings,
    group, terms, model, k, rss, score, selected).
    """
    t0 = time.perf_counter()
    grid = _selection_grid(grid)
    if criterion not in CRITERIA:
        raise ValueError(f"unknown information criterion {criterion!r}; valid choices: {CRITERIA}")
    u = _check_finite("the data", u)
    if u.ndim != 2:
        raise ValueError(f"u must be [time, space], got shape {u.shape}")
    T, n = u.shape
    if horizon < 1 or starts < 1 or T - 1 < horizon:
        raise ValueError(
            f"horizon ({horizon}) and starts ({starts}) must be >= 1 with horizon < {T} times"
        )
    # 1. candidates, derivatives shared between windows
    ut_cache, ux_cache, fits, rows = {}, {}, [], []
    for deg_x, width_x, deg_t, width_t in itertools.product(
        grid["deg_x"], grid["width_x"], grid["deg_t"], grid["width_t"]
    ):
        if deg_x < max_derivative or deg_x > 2 * width_x or deg_t > 2 * width_t:
            continue
        if 2 * width_x + 1 > n or 2 * width_t + 1 > T:
            continue
        if (deg_t, width_t) not in ut_cache:
            ut_cache[deg_t, width_t] = poly_diff(u, dt, 1, degree=deg_t, width=width_t, axis=0)
        if (deg_x, width_x) not in ux_cache:
            ux_cache[deg_x, width_x] = [
                poly_diff(u, dx, d, degree=deg_x, width=width_x, axis=1)
                for d in range(1, max_derivative + 1)
            ]
        keep = (slice(width_t, T - width_t), slice(width_x, n - width_x))
        theta, terms = pde_library(u[keep], [d[keep] for d in ux_cache[deg_x, width_x]], max_power)
        y = ut_cache[deg_t, width_t][keep].ravel()
        grams = _split_grams(theta, y, split, seed)
        for l0 in grid["l0_penalty"]:
            xi, info = _train_stridge_grams(
                grams, alpha, d_tol, max_iter, stridge_iter, float(l0) or None
            )
            settings = dict(
                deg_x=deg_x, width_x=width_x, deg_t=deg_t, width_t=width_t, l0_penalty=float(l0)
            )
            fits.append(Fit(xi[:, None], terms, ["u_t"], 0.0, {**info, "settings": settings}))
    if not fits:
        raise ValueError(
            "no window of the selection grid fits the data: need deg_x >= max_derivative, "
            "deg <= 2·width and 2·width + 1 samples at most"
        )
    # 2. groups of identical fits
    groups: dict[tuple, int] = {}
    members = []
    for fit in fits:
        xi = fit.coefficients[:, 0]
        key = tuple(np.flatnonzero(xi)) + tuple(np.round(xi[xi != 0], 10))
        if key not in groups:
            groups[key] = len(groups)
            members.append(fit)
        rows.append({**fit.info["settings"], "group": groups[key]})
    # 3. forward predictions from the smoothed data
    length = n * dx
    smooth, cutoff = spectral_smooth(u, threshold=smooth_threshold)
    first = np.unique(np.linspace(0, T - 1 - horizon, starts).round().astype(int))
    observed = np.stack([u[s + 1 : s + 1 + horizon] for s in first])
    n_obs = observed.size
    modes = int(math.ceil(resolution * cutoff))
    scores = []
    for g, fit in enumerate(members):
        found = fit.equations()["u_t"]
        k = len(found)
        try:
            pred = simulate_pde(
                found,
                smooth[first],
                dt,
                horizon,
                length,
                max_power=max_power,
                max_derivative=max_derivative,
                modes=modes,
            )[:, 1:]
            with np.errstate(over="ignore", invalid="ignore"):
                rss = float(np.sum((pred - observed) ** 2))
            note = "" if np.isfinite(rss) else "blows up"
        except ValueError as e:  # too stiff for the step budget
            rss, note = float("inf"), str(e)
        rss = rss if np.isfinite(rss) else float("inf")
        score = information_criterion(rss, n_obs, k, criterion)
        scores.append(
            dict(
                terms=", ".join(found) or "-", model=str(fit), k=k, rss=rss, score=score, note=note
            )
        )
        logger.debug("group %d: %s  rss %.4g  %s %.6g", g, fit, rss, criterion, score)
    for r in rows:
        r.update(scores[r["group"]], selected=False)
    best_group = min(range(len(members)), key=lambda g: (scores[g]["score"], scores[g]["k"]))
    best = next(i for i, r in enumerate(rows) if r["group"] == best_group)
    rows[best]["selected"] = True
    chosen = fits[best]
    settings = dict(chosen.info["settings"])
    info = {
        **chosen.info,
        "criterion": criterion,
        "score": scores[best_group]["score"],
        "rss": scores[best_group]["rss"],
        "candidates": len(fits),
        "distinct": len(members),
        "cutoff_mode": cutoff,
        "simulated_modes": min(modes, n // 3),
        "horizon": horizon,
        "starts": len(first),
    }
    seconds = time.perf_counter() - t0
    fit = Fit(chosen.coefficients, chosen.terms, chosen.lhs, seconds, info)
    logger.info(
        "selected %s (%s) of %d candidates (%d distinct) by %s in %.1f s",
        fit,
        settings,
        len(fits),
        len(members),
        criterion,
        seconds,
    )
    return Selection(fit, settings, rows, seconds)


# ----------------------------------------------------------------------------- data sets

PDE_SETUPS = {
    "burgers": dict(n=256, nt=101, x0=-8.0, length=16.0, t1=10.0, nu=0.1),
    "kdv": dict(n=512, nt=201, x0=-30.0, length=60.0, t1=20.0),
}


def add_noise(u, level: float, seed: int = 0) -> np.ndarray:
    """``u + level · std(u) · N(0, 1)`` (Rudy et al.'s noise: ``level = 0.01`` is 1 %)."""
    u = np.asarray(u, dtype=np.float64)
    if level == 0:
        return u
    return u + level * np.std(u) * np.random.default_rng(seed).standard_normal(u.shape)


def pde_dataset(equation: str, *, method: str = "etdrk4", max_step: float = 1e-3, **overrides):
    """The PDE-FIND data sets, by the Fourier pseudo-spectral solver of :mod:`physics.pde` in
    float64: 'burgers' (ν = 0.1, x ∈ [−8, 8) with 256 points, t ∈ [0, 10] with 101 times,
    u0 = exp(−(x+2)²)) and 'kdv' (x ∈ [−30, 30) with 512 points, t ∈ [0, 20] with 201 times,
    two solitons of speeds 2 and 1). ``overrides``: n, nt, x0, length, t1 (and nu).

    Returns {'x' [n], 't' [nt], 'u' [nt, n], 'dx', 'dt'}.
    """
    import jax

    from physics import pde

    if equation not in PDE_SETUPS:
        raise ValueError(f"unknown PDE {equation!r}; valid choices: {list(PDE_SETUPS)}")
    s = {**PDE_SETUPS[equation], **overrides}
    x = pde.grid(s["n"], s["length"], s["x0"])
    t = np.linspace(0.0, s["t1"], s["nt"])
    with jax.enable_x64(True):
        if equation == "burgers":
            u0 = pde.burgers_pdefind_initial(x)
            u = pde.solve_burgers(
                u0, t, length=s["length"], nu=s["nu"], method=method, max_step=max_step
            )
        else:
            u0 = pde.kdv_two_soliton_initial(x)
            u = pde.solve_kdv(u0, t, length=s["length"], method=method, max_step=max_step)
        u = np.asarray(u)
    return {"x": x, "t": t, "u": u, "dx": s["length"] / s["n"], "dt": t[1] - t[0]}


def ode_dataset(equation: str, *, t1: float | None = None, dt: float | None = None):
    """ODE trajectories by diffrax (Dopri5, rtol = atol = 1e-12, float64):

    - 'lorenz': σ = 10, ρ = 28, β = 8/3 from (−8, 8, 27), t ∈ [0, 10], dt = 0.002;
    - 'pendulum': :func:`physics.simulators.damped_pendulum` (ω0 = 2π/12, α = 0.2) from
      θ = 2.5, ω = 0, t ∈ [0, 40], dt = 0.02.

    Returns {'x' [T, k], 't' [T], 'dt', 'names'}.
    """
    import jax
    import jax.numpy as jnp

    from physics import simulators as sim

    if equation == "lorenz":
        t1, dt = t1 or 10.0, dt or 0.002
        y0, names = [-8.0, 8.0, 27.0], ["x", "y", "z"]

        def field(t, y, args):
            del t, args
            return jnp.stack(
                [10.0 * (y[1] - y[0]), y[0] * (28.0 - y[2]) - y[1], y[0] * y[1] - 8 / 3 * y[2]]
            )

        args = None
    elif equation == "pendulum":
        t1, dt = t1 or 40.0, dt or 0.02
        y0, names, field, args = [2.5, 0.0], ["θ", "ω"], sim.damped_pendulum, (2 * np.pi / 12, 0.2)
    else:
        raise ValueError(f"unknown ODE {equation!r}; valid choices: {list(ODE_EQUATIONS)}")
    num = int(round(t1 / dt)) + 1
    with jax.enable_x64(True):
        ts = jnp.linspace(0.0, t1, num)
        x = sim.integrate(
            field,
            jnp.asarray(y0, jnp.float64),
            ts,
            dt=dt,
            solver="dopri5",
            args=args,
            rtol=1e-12,
            atol=1e-12,
            max_steps=200_000,
        )
        x = np.asarray(x)
    return {"x": x, "t": np.asarray(ts), "dt": float(t1 / (num - 1)), "names": names}


# ----------------------------------------------------------------------------- PySINDy


def _pysindy_name(name: str) -> str:
    """PySINDy's PDE feature names ('1', 'x0', 'x0^2', 'x0_11', 'x0x0_1', 'x0^2x0_111') as
    ours ('1', 'u', 'u^2', 'u_xx', 'u u_x', 'u^2 u_xxx')."""
    import re

    m = re.fullmatch(r"(x0(?:\^(\d+))?)?(x0_(1+))?", name.replace(" ", ""))
    if name.strip() == "1" or m is None:
        return name.strip()
    p = 0 if m.group(1) is None else int(m.group(2) or 1)
    d = 0 if m.group(3) is None else len(m.group(4))
    return _pde_term(p, d)


def pysindy_pde_find(
    u,
    x,
    dt: float,
    *,
    max_derivative: int = 3,
    max_power: int = 3,
    optimizer: str = "stlsq",
    threshold: float = 1.0,
    alpha: float = 1e-5,
    smooth: tuple[int, int] | None = None,
) -> Fit:
    """The same problem through PySINDy: ``PDELibrary`` (polynomials of u up to ``max_power``,
    derivatives up to ``max_derivative``, bias, products: the same (P+1)(D+1) terms), finite
    differences, or with ``smooth=(window, polyorder)`` Savitzky–Golay smoothing before them
    (``SmoothedFiniteDifference``, in t and x), and ``optimizer`` 'stlsq' (threshold on the
    unit-norm columns) or 'sr3' (L0, ν = 100, λ = threshold²/(2ν)).

    u: [T, n]. Raises ImportError when pysindy is not installed.
    """
    import pysindy as ps

    t0 = time.perf_counter()
    kws = {}
    if smooth is not None:
        kws = {"smoother_kws": {"window_length": smooth[0], "polyorder": smooth[1]}}
    lib = ps.PDELibrary(
        function_library=ps.PolynomialLibrary(degree=max_power, include_bias=False),
        derivative_order=max_derivative,
        spatial_grid=np.asarray(x),
        include_bias=True,
        **(
            {"differentiation_method": ps.SmoothedFiniteDifference, "diff_kwargs": kws}
            if smooth
            else {}
        ),
    )
    if optimizer == "stlsq":
        opt = ps.STLSQ(threshold=threshold, alpha=alpha, normalize_columns=True)
    elif optimizer == "sr3":
        nu = 100.0
        opt = ps.SR3(
            reg_weight_lam=threshold**2 / (2 * nu),
            regularizer="L0",
            relax_coeff_nu=nu,
            max_iter=10_000,
            tol=1e-10,
            normalize_columns=True,
        )
    else:
        raise ValueError(f"unknown PySINDy optimizer {optimizer!r}; valid choices: stlsq, sr3")
    # time is the second-to-last axis of PySINDy's [x, t, feature] arrays
    time_diff = (
        ps.SmoothedFiniteDifference(axis=-2, **kws) if smooth else ps.FiniteDifference(axis=-2)
    )
    model = ps.SINDy(optimizer=opt, feature_library=lib, differentiation_method=time_diff)
    model.fit(np.asarray(u).T[:, :, None], t=dt)
    coef = np.asarray(model.coefficients())[0]
    terms = [_pysindy_name(n) for n in model.get_feature_names()]
    return Fit(coef[:, None], terms, ["u_t"], time.perf_counter() - t0, {"optimizer": optimizer})


# ----------------------------------------------------------------------------- command


def _floats(text: str) -> list[float]:
    return [float(v) for v in str(text).split(",") if v.strip()]


def _names(text: str) -> list[str]:
    return [v.strip() for v in str(text).split(",") if v.strip()]


def discover_equation(equation: str, data: dict, noisy: bool, cfg) -> Fit:
    """Our fit with the settings of ``cfg`` (the ``discover`` section of a preset): PDE-FIND
    (finite differences of ``cfg.fd_accuracy`` on clean data; on noisy data local polynomials,
    their windows and ε₀ chosen by :func:`select_pde` when ``cfg[equation].select``, else the
    fixed ones) or SINDy. ``data``: :func:`pde_dataset` / :func:`ode_dataset` output. A
    selection leaves its candidate rows in ``fit.info['table']``."""
    if equation in PDE_EQUATIONS:
        c = cfg[equation]
        common = dict(
            max_derivative=c.max_derivative,
            max_power=c.max_power,
            alpha=c.alpha,
            d_tol=c.d_tol,
            seed=cfg.split_seed,
        )
        if noisy and c.get("select", False):
            grid = {k: tuple(c[f"select_{k}"]) for k in SELECTION_GRID_KEYS}
            sel = select_pde(
                data["u"],
                data["dx"],
                data["dt"],
                grid=grid,
                horizon=c.select_horizon,
                starts=c.select_starts,
                criterion=c.select_criterion,
                **common,
            )
            sel.fit.info["table"] = sel.table()
            return sel.fit
        kwargs = dict(common, l0_penalty=c.l0_penalty or None)
        if noisy:
            kwargs.update(
                diff="poly", deg_x=c.deg_x, deg_t=c.deg_t, width_x=c.width_x, width_t=c.width_t
            )
        else:
            kwargs.update(diff="fd", accuracy=cfg.fd_accuracy)
        fit = pde_find(data["u"], data["dx"], data["dt"], **kwargs)
        if noisy:
            fit.info["settings"] = dict(
                deg_x=c.deg_x,
                width_x=c.width_x,
                deg_t=c.deg_t,
                width_t=c.width_t,
                l0_penalty=float(c.l0_penalty),
            )
        return fit
    c = cfg[equation]
    return sindy(
        data["x"],
        data["dt"],
        degree=c.degree,
        threshold=c.threshold,
        trig=c.trig,
        accuracy=cfg.fd_accuracy if not noisy else 2,
        names=data["names"],
    )


def _settings_text(equation: str, noisy: bool, method: str, fit: Fit, cfg) -> str:
    """How a row's fit was made: derivatives, regression settings, and whether they were
    selected (and among how many candidates)."""
    c = cfg[equation]
    if equation not in PDE_EQUATIONS:
        return f"FD{cfg.fd_accuracy if not noisy else 2}, STLSQ {c.threshold:g}"
    if method != "ours":
        smooth = f", Savitzky–Golay {2 * c.width_t + 1}/{c.deg_t}" if noisy else ""
        return f"{fit.info.get('optimizer', method).upper()}, threshold {c.pysindy_threshold:g}{smooth}"
    eps = fit.info.get("l0_penalty", float("nan"))
    if not noisy:
        return f"FD{cfg.fd_accuracy}, ε₀ = {eps:.3g}"
    s = fit.info["settings"]
    text = (
        f"poly deg_x = {s['deg_x']}, width_x = {s['width_x']}, deg_t = {s['deg_t']}, "
        f"width_t = {s['width_t']}, "
        + (f"ε₀ = {s['l0_penalty']:g}" if s["l0_penalty"] else f"ε₀ = auto ({eps:.3g})")
    )
    if "criterion" in fit.info:
        text = (
            f"selected by {_CRITERION_NAMES[fit.info['criterion']]} among {fit.info['candidates']} "
            f"({fit.info['distinct']} distinct): {text}"
        )
    else:
        text = f"fixed: {text}"
    return text


def _pysindy_fits(equation: str, data: dict, noisy: bool, cfg) -> list[tuple[str, Fit]]:
    c = cfg[equation]
    smooth = (2 * c.width_t + 1, c.deg_t) if noisy else None
    out = []
    for opt in ("stlsq", "sr3"):
        fit = pysindy_pde_find(
            data["u"],
            data["x"],
            data["dt"],
            max_derivative=c.max_derivative,
            max_power=c.max_power,
            optimizer=opt,
            threshold=c.pysindy_threshold,
            alpha=c.alpha,
            smooth=smooth,
        )
        out.append((f"pysindy-{opt}", fit))
    return out


def _row(equation, noise, method, fit: Fit, cfg):
    true = TRUE_COEFFICIENTS[equation]
    found = fit.equations()
    mean, std, exact, errs = coefficient_errors(found, true)
    published = PUBLISHED.get((equation, noise))
    return {
        "equation": equation,
        "noise": noise,
        "method": method,
        "terms_found": " | ".join(
            f"{lhs}: {', '.join(terms) or '-'}" for lhs, terms in found.items()
        ),
        "exact_terms": exact,
        "error_mean_pct": mean,
        "error_std_pct": std,
        "published_pct": "" if published is None else f"{published[0]} ± {published[1]}",
        "seconds": fit.seconds,
        "model": str(fit),
        "coefficients": json.dumps(found),
        "settings": _settings_text(equation, noise > 0, method, fit, cfg),
    }


def _write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]) if rows else ["equation"])
        w.writeheader()
        w.writerows(rows)


def _figure(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    equations = list(dict.fromkeys(r["equation"] for r in rows))
    fig, axes = plt.subplots(1, len(equations), figsize=(4.2 * len(equations), 3.6), squeeze=False)
    for ax, eq in zip(axes[0], equations):
        true = [
            (lhs, t, c) for lhs, terms in TRUE_COEFFICIENTS[eq].items() for t, c in terms.items()
        ]
        mine = [r for r in rows if r["equation"] == eq]
        width = 0.8 / max(len(mine), 1)
        for i, r in enumerate(mine):
            found = json.loads(r["coefficients"])
            ratio = [found.get(lhs, {}).get(t, 0.0) / c for lhs, t, c in true]
            ax.bar(
                np.arange(len(true)) + (i - (len(mine) - 1) / 2) * width,
                ratio,
                width,
                label=f"{r['method']}, noise {r['noise']:g}",
            )
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(np.arange(len(true)))
        ax.set_xticklabels([f"{lhs}: {t}" for lhs, t, _ in true], rotation=30, fontsize=7)
        ax.set_title(eq)
        ax.set_ylabel("recovered / true coefficient")
        lo = min([0.9] + [b.get_height() for b in ax.patches])
        hi = max([1.1] + [b.get_height() for b in ax.patches])
        ax.set_ylim(max(lo - 0.02, -0.1), min(hi + 0.02, 2.0))
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(config, workdir) -> list[dict]:
    """``physics discover``: for each equation of ``discover.equations`` and each noise level
    of ``discover.noise``, our fit (PDE-FIND / SINDy) and, for the PDEs, PySINDy's (STLSQ and
    SR3) on the same data; writes discover.csv, discover.md and discover.png in ``workdir``."""
    workdir = pathlib.Path(workdir)
    cfg = config.discover
    equations = _names(cfg.equations)
    methods = _names(cfg.methods)
    for e in equations:
        if e not in EQUATIONS:
            raise ValueError(f"unknown equation {e!r}; valid choices: {list(EQUATIONS)}")
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown discovery method {m!r}; valid choices: {list(METHODS)}")
    noises = _floats(cfg.noise)
    workdir.mkdir(parents=True, exist_ok=True)
    use_pysindy = "pysindy" in methods
    if use_pysindy:
        try:
            import pysindy  # noqa: F401
        except ImportError:
            logger.warning("pysindy not installed: its rows are skipped")
            use_pysindy = False
    rows = []
    for eq in equations:
        t = time.perf_counter()
        if eq in PDE_EQUATIONS:
            c = cfg[eq]
            sizes = {k: c[k] for k in ("n", "nt") if k in c}
            clean = pde_dataset(eq, **sizes)
            key = "u"
        else:
            clean = ode_dataset(eq, t1=cfg[eq].t1, dt=cfg[eq].dt)
            key = "x"
        logger.info("%s: data generated in %.1f s", eq, time.perf_counter() - t)
        for noise in noises:
            data = {**clean, key: add_noise(clean[key], noise, seed=config.seed)}
            fits = (
                [("ours", discover_equation(eq, data, noise > 0, cfg))] if "ours" in methods else []
            )
            if use_pysindy and eq in PDE_EQUATIONS:
                fits += _pysindy_fits(eq, data, noise > 0, cfg)
            for method, fit in fits:
                row = _row(eq, noise, method, fit, cfg)
                if "table" in fit.info:
                    _write_csv(workdir / f"discover_select_{eq}_{noise:g}.csv", fit.info["table"])
                logger.info(
                    "%s noise %g %s: %s (error %.3g ± %.3g %%, %.3f s)",
                    eq,
                    noise,
                    method,
                    row["model"],
                    row["error_mean_pct"],
                    row["error_std_pct"],
                    row["seconds"],
                )
                rows.append(row)
    _write_csv(workdir / "discover.csv", rows)
    lines = [
        "| equation | noise | method | terms found | exact terms | coefficient error (%) | "
        "Rudy et al. (%) | time (s) | settings |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['equation']} | {r['noise']:g} | {r['method']} | {r['terms_found']} | "
            f"{'yes' if r['exact_terms'] else 'no'} | {r['error_mean_pct']:.3g} ± "
            f"{r['error_std_pct']:.2g} | {r['published_pct'] or '—'} | {r['seconds']:.3f} | "
            f"{r['settings']} |"
        )
    if "pysindy" in methods and not use_pysindy:
        lines.append("\npysindy not installed: no PySINDy rows.")
    lines.append("")
    lines += [
        f"- {r['equation']}, noise {r['noise']:g}, {r['method']}: `{r['model']}`" for r in rows
    ]
    (workdir / "discover.md").write_text("\n".join(lines) + "\n")
    if rows:
        _figure(rows, workdir / "discover.png")
    for line in lines[: 2 + len(rows)]:
        logger.info("%s", line)
    return rows
