"""Infinite-width discriminator dynamics in dual coefficients.

Fakes x_1..x_N, reals y_1..y_M, X = [x; y] (n = N + M), kernel k, K = k(X, X). The
discriminator maximises L(f) = E_fake a(f(x)) − E_real b(f(y)) by function-space gradient
flow; with f_0 = 0 its solution is `f_t(z) = k(z, X) u(t)` where the dual coefficients solve

    du/dt = g(K u),   g_i = a'(f_i)/N on fakes,  −b'(f_j)/M on reals,   u(0) = 0.

Time-scale convention (one for all losses): t is the time of this flow with the objective
written as a plain mean (no ½, no factor 4 as in neural-tangents' MSE predictor, which the
reference toolkit compensated by evaluating NT at 4t).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gantk.kernels import KernelFn, kernel_matvec

__all__ = [
    "METHODS",
    "dual_coefficients",
    "dual_rhs",
    "lsgan_eigen",
    "lsgan_lanczos",
    "solve_dual_ode",
    "LOSSES",
    "GanLoss",
    "gan_loss",
    "dual_weights",
    "labels",
    "ipm_coefficients",
    "discriminator_objective",
    "Discriminator",
    "discriminator",
    "gram_matrix",
    "gram_from_rows",
    "ntk_mmd",
]


class GanLoss(NamedTuple):
    a: Callable[[jax.Array], jax.Array]  # fake term of the discriminator objective
    b: Callable[[jax.Array], jax.Array]  # real term (subtracted)
    c: Callable[[jax.Array], jax.Array]  # generator per-point loss c(f(x))


def _lsgan_c(variant: str):
    if variant == "zero":
        return lambda f: f**2
    if variant == "one":
        return lambda f: (f - 1.0) ** 2
    raise ValueError(f"unknown lsgan generator target '{variant}'; valid: zero, one")


LOSSES = ("ipm", "lsgan", "vanilla", "hinge")


def gan_loss(name: str, generator_target: str = "zero") -> GanLoss:
    """(a, b, c) of the paper's losses; `generator_target` selects LSGAN's c (f² or (f−1)²)."""
    if name == "ipm":
        return GanLoss(lambda f: f, lambda f: f, lambda f: f)
    if name == "lsgan":
        return GanLoss(
            lambda f: -((f + 1.0) ** 2), lambda f: (f - 1.0) ** 2, _lsgan_c(generator_target)
        )
    if name == "vanilla":
        return GanLoss(
            lambda f: jax.nn.log_sigmoid(-f),  # log(1 − σ(f))
            lambda f: -jax.nn.log_sigmoid(f),  # −log σ(f)
            lambda f: -jax.nn.log_sigmoid(f),  # non-saturating generator
        )
    if name == "hinge":
        return GanLoss(
            lambda f: -jax.nn.relu(1.0 + f), lambda f: jax.nn.relu(1.0 - f), lambda f: -f
        )
    raise ValueError(f"unknown GAN loss '{name}'; valid: {', '.join(LOSSES)}")


def dual_weights(n_fake: int, n_real: int, dtype=jnp.float32) -> jax.Array:
    """[n] = [1/N, ..., 1/N, −1/M, ..., −1/M]."""
    return jnp.concatenate(
        [jnp.full((n_fake,), 1.0 / n_fake, dtype), jnp.full((n_real,), -1.0 / n_real, dtype)]
    )


def labels(n_fake: int, n_real: int, dtype=jnp.float32) -> jax.Array:
    """[n] = [−1 (fakes) ..., +1 (reals) ...] (LSGAN targets)."""
    return jnp.concatenate([-jnp.ones((n_fake,), dtype), jnp.ones((n_real,), dtype)])


def ipm_coefficients(t: float, n_fake: int, n_real: int, dtype=jnp.float32) -> jax.Array:
    """IPM: g is constant, so u(t) = t·[1/N, −1/M] and f_t = t (E_fake k(·, x) − E_real k(·, y))."""
    return t * dual_weights(n_fake, n_real, dtype)


def discriminator_objective(loss: GanLoss, f_fake: jax.Array, f_real: jax.Array) -> jax.Array:
    """L(f) = E_fake a(f(x)) − E_real b(f(y))."""
    return jnp.mean(loss.a(f_fake)) - jnp.mean(loss.b(f_real))


# ----------------------------------------------------------------------------- general solver

MatVec = Callable[[jax.Array], jax.Array]  # u [n] -> K u [n]
METHODS = ("auto", "closed_form", "eigen", "lanczos", "ode", "fixed_step")


def dual_rhs(loss: GanLoss, n_fake: int, n_real: int) -> Callable[[jax.Array], jax.Array]:
    """g(f) [n]: a'(f_i)/N on fakes, −b'(f_j)/M on reals (the dual ODE is du/dt = g(K u))."""
    da = jax.vmap(jax.grad(loss.a))
    db = jax.vmap(jax.grad(loss.b))

    def g(f):
        return jnp.concatenate([da(f[:n_fake]) / n_fake, -db(f[n_fake:]) / n_real])

    return g


def _as_matvec(K: jax.Array | MatVec) -> MatVec:
    return K if callable(K) else (lambda v: K @ v)


def lsgan_eigen(K: jax.Array, n_fake: int, n_real: int, t: float) -> jax.Array:
    """Exact LSGAN u(t) by an eigendecomposition (the reference's O(n³) route, kept to check).

    With W = diag(1/N, 1/M), y the labels and S = W^½ K W^½ (symmetric):
    u(t) = W^½ h(S) W^½ y,  h(λ) = (1 − e^{−2tλ})/λ, so that K u = (I − e^{−2tKW}) y.
    """
    w = jnp.abs(dual_weights(n_fake, n_real, K.dtype))
    sw = jnp.sqrt(w)
    S = sw[:, None] * K * sw[None, :]
    lam, V = jnp.linalg.eigh(S)
    return sw * (V @ (_h(lam, t) * (V.T @ (sw * labels(n_fake, n_real, K.dtype)))))


def _h(lam: jax.Array, t: float) -> jax.Array:
    """(1 − e^{−2tλ})/λ, continuous at λ = 0 (value 2t); eigenvalues below 0 are round-off."""
    lam = jnp.maximum(lam, 0.0)
    small = lam * t < 1e-6
    safe = jnp.where(small, 1.0, lam)
    return jnp.where(small, 2 * t * (1 - t * lam), -jnp.expm1(-2 * t * safe) / safe)


def lsgan_lanczos(
    K: jax.Array | MatVec, n_fake: int, n_real: int, t: float, num_iters: int = 48, dtype=None
) -> jax.Array:
    """LSGAN u(t) = W^½ h(S) W^½ y by `num_iters` Lanczos steps on S (no n×n decomposition).

    O(num_iters) products with K instead of an O(n³) eigendecomposition: the Krylov space of S
    from b = W^½ y gives h(S) b ≈ ‖b‖ Q h(T) e₁ (T tridiagonal, Q orthonormal, fully
    re-orthogonalised for float32). h is entire and the kernel spectrum decays fast, so a few
    dozen steps reach 1e-6 relative accuracy at the paper's settings (see the benchmark).
    """
    mv = _as_matvec(K)
    n = n_fake + n_real
    dtype = dtype or (K.dtype if not callable(K) else jnp.float32)
    sw = jnp.sqrt(jnp.abs(dual_weights(n_fake, n_real, dtype)))
    b = sw * labels(n_fake, n_real, dtype)
    m = min(int(num_iters), n)
    beta0 = jnp.linalg.norm(b)
    Q = jnp.zeros((m + 1, n), dtype).at[0].set(b / beta0)

    def body(j, carry):
        Q, alphas, betas = carry
        q = Q[j]
        v = sw * mv(sw * q)  # S q
        alpha = jnp.dot(q, v)
        v = v - alpha * q - jnp.where(j > 0, betas[j - 1], 0.0) * Q[jnp.maximum(j - 1, 0)]
        # full re-orthogonalisation against the basis built so far (rows > j are still zero)
        v = v - Q.T @ (Q @ v)
        v = v - Q.T @ (Q @ v)
        beta = jnp.linalg.norm(v)
        Q = Q.at[j + 1].set(v / jnp.where(beta > 0, beta, 1.0))
        return Q, alphas.at[j].set(alpha), betas.at[j].set(beta)

    Q, alphas, betas = jax.lax.fori_loop(
        0, m, body, (Q, jnp.zeros((m,), dtype), jnp.zeros((m,), dtype))
    )
    T = jnp.diag(alphas) + jnp.diag(betas[: m - 1], 1) + jnp.diag(betas[: m - 1], -1)
    lam, V = jnp.linalg.eigh(T)
    coeffs = V @ (_h(lam, t) * V[0])  # h(T) e₁
    return sw * (beta0 * (Q[:m].T @ coeffs))


def solve_dual_ode(
    loss: GanLoss,
    K: jax.Array | MatVec,
    n_fake: int,
    n_real: int,
    t: float,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    fixed_steps: int = 0,
    max_steps: int = 100_000,
    dtype=jnp.float32,
) -> jax.Array:
    """u(t) for any loss by integrating du/dt = g(K u), u(0) = 0 with diffrax.

    Adaptive Tsit5 with a PID controller (`rtol`, `atol`), or, when `fixed_steps > 0`, that
    many constant Tsit5 steps (the fine fixed-step reference of the tests).
    """
    import diffrax

    mv = _as_matvec(K)
    g = dual_rhs(loss, n_fake, n_real)
    term = diffrax.ODETerm(lambda s, u, args: g(mv(u)))
    y0 = jnp.zeros((n_fake + n_real,), dtype)
    if fixed_steps > 0:
        solver, controller, dt0 = diffrax.Tsit5(), diffrax.ConstantStepSize(), t / fixed_steps
    else:
        solver = diffrax.Tsit5()
        controller = diffrax.PIDController(rtol=rtol, atol=atol)
        dt0 = t / 64
    with jax.numpy_rank_promotion("allow"):  # diffrax/equinox internals
        sol = diffrax.diffeqsolve(
            term,
            solver,
            t0=0.0,
            t1=t,
            dt0=dt0,
            y0=y0,
            stepsize_controller=controller,
            max_steps=max(max_steps, fixed_steps + 1),
            saveat=diffrax.SaveAt(t1=True),
            throw=False,
        )
    # A failed solve (e.g. max_steps reached) returns NaN, which the training loop reports
    # as a non-finite quantity at that step instead of a stack trace.
    ok = sol.result == diffrax.RESULTS.successful
    return jnp.where(ok, sol.ys[-1], jnp.nan)


def _check_counts(n_fake, n_real) -> None:
    for name, v in (("n_fake", n_fake), ("n_real", n_real)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def _check_time(t) -> None:
    if isinstance(t, int | float | np.number) and not t >= 0:
        raise ValueError(f"training time t must be >= 0, got {t}")


def dual_coefficients(
    loss: str,
    K: jax.Array | MatVec | None,
    n_fake: int,
    n_real: int,
    t: float,
    *,
    method: str = "auto",
    generator_target: str = "zero",
    lanczos_iters: int = 48,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    fixed_steps: int = 0,
    dtype=jnp.float32,
) -> jax.Array:
    """Dual coefficients u(t) [n] of the infinite-width discriminator, n = n_fake + n_real.

    The discriminator, initialised at f_0 = 0 and trained for time t by the function-space
    gradient flow of L(f) = mean_fake a(f(x)) − mean_real b(f(y)), is f_t(z) = k(z, X) u(t)
    with X = [fakes; reals] and

        du/dt = g(K u),  u(0) = 0,  g_i = a'(f_i)/N on fakes, −b'(f_j)/M on reals,

    K = k(X, X) [n, n] (fakes first). Closed forms: IPM (a = b = id) u(t) = t·[1/N…, −1/M…];
    LSGAN (a = −(f+1)², b = (f−1)²) K u(t) = (I − exp(−2t K W)) y, W = diag(1/N…, 1/M…),
    y = [−1…, +1…]. t is the time of this flow with the objective a plain mean.

    loss: one of `LOSSES` (ipm, lsgan, vanilla, hinge). K: the [n, n] kernel matrix, or a
    function v -> K v (Lanczos, ODE), or None for the IPM closed form (which needs no kernel).
    method: auto (closed form for IPM, Lanczos for LSGAN, adaptive ODE otherwise),
    closed_form (IPM; LSGAN by eigendecomposition), eigen (LSGAN), lanczos (LSGAN, with
    `lanczos_iters` Krylov steps), ode (any loss, adaptive Tsit5 at `rtol`/`atol`),
    fixed_step (any loss, `fixed_steps` constant Tsit5 steps, 1000 if 0). `dtype` applies
    when K is not an array. `generator_target` is accepted for symmetry with `gan_loss` (it
    does not change u). Unknown names, a K of the wrong shape and a method that does not
    solve the loss raise ValueError.
    """
    if method not in METHODS:
        raise ValueError(f"unknown dual solver '{method}'; valid: {', '.join(METHODS)}")
    gan = gan_loss(loss, generator_target)
    _check_counts(n_fake, n_real)
    _check_time(t)
    n = n_fake + n_real
    if K is not None and not callable(K):
        if getattr(K, "shape", None) != (n, n):
            raise ValueError(
                f"kernel matrix K has shape {getattr(K, 'shape', None)}; expected "
                f"(n_fake + n_real, n_fake + n_real) = ({n}, {n})"
            )
        dtype = K.dtype
    if method == "auto":
        method = {"ipm": "closed_form", "lsgan": "lanczos"}.get(loss, "ode")
    if method == "closed_form":
        if loss == "ipm":
            return ipm_coefficients(t, n_fake, n_real, dtype)
        if loss == "lsgan":
            method = "eigen"
        else:
            raise ValueError(f"loss '{loss}' has no closed form; valid methods: ode, fixed_step")
    if method in ("eigen", "lanczos") and loss != "lsgan":
        raise ValueError(f"method '{method}' solves the LSGAN loss only, not '{loss}'")
    if K is None:
        raise ValueError(f"method '{method}' needs the kernel matrix K (or a matvec), got None")
    if method == "eigen":
        if callable(K):
            raise ValueError("method 'eigen' needs the kernel matrix, not a matvec")
        return lsgan_eigen(K, n_fake, n_real, t)
    if method == "lanczos":
        return lsgan_lanczos(K, n_fake, n_real, t, lanczos_iters, dtype)
    steps = fixed_steps if method == "fixed_step" else 0
    if method == "fixed_step" and steps <= 0:
        steps = 1000
    return solve_dual_ode(
        gan, K, n_fake, n_real, t, rtol=rtol, atol=atol, fixed_steps=steps, dtype=dtype
    )


# ----------------------------------------------------------------------------- discriminator


def _points(name: str, x) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim < 2 or x.shape[0] < 1:
        raise ValueError(f"{name} must be a non-empty [n, ...] batch of points, got {x.shape}")
    return x


def _same_point_shape(**arrays) -> None:
    shapes = {name: a.shape[1:] for name, a in arrays.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"points of different shapes: {listed}")


@jax.tree_util.register_pytree_node_class
class Discriminator:
    """The trained infinite-width discriminator f_t(z) = k(z, X) u, X = [fakes; reals].

    Calling it on z [Q, ...] gives f_t(z) [Q] (`kernels.kernel_matvec`, columns in blocks of
    `block_size`); `self_rows=True` declares z[i] = X[i] (the fakes themselves), where the
    input gradient takes the symmetric subgradient at the kernel's cusp. A pytree (points and
    coefficients are leaves), so it passes through `jax.jit`.
    """

    def __init__(self, kernel, points, coefficients, n_fake: int, block_size: int = 1024):
        self.kernel = kernel
        self.points = points  # X [n, ...] = [fakes; reals]
        self.coefficients = coefficients  # u(t) [n]
        self.n_fake = int(n_fake)
        self.block_size = int(block_size)

    def __call__(self, z: jax.Array, *, self_rows: bool = False) -> jax.Array:
        z = _points("query points z", z)
        _same_point_shape(z=z, points=self.points)
        return _evaluate(self, z.astype(self.points.dtype), bool(self_rows))

    def tree_flatten(self):
        return (self.points, self.coefficients), (self.kernel, self.n_fake, self.block_size)

    @classmethod
    def tree_unflatten(cls, aux, children):
        kernel, n_fake, block_size = aux
        return cls(kernel, *children, n_fake, block_size)


@functools.partial(jax.jit, static_argnums=2)
def _evaluate(disc: Discriminator, z: jax.Array, self_rows: bool) -> jax.Array:
    return kernel_matvec(
        disc.kernel, z, disc.points, disc.coefficients, disc.block_size, self_rows=self_rows
    )


def discriminator(
    kernel: KernelFn,
    x_fake: jax.Array,
    x_real: jax.Array,
    loss: str = "ipm",
    t: float = 1.0,
    query: jax.Array | None = None,
    *,
    method: str = "auto",
    generator_target: str = "zero",
    block_size: int = 1024,
    lanczos_iters: int = 48,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    fixed_steps: int = 0,
    k_real: jax.Array | None = None,
) -> Discriminator | jax.Array:
    """The exact infinite-width discriminator after training time t.

    f_t(z) = k(z, X) u(t), X = [x_fake; x_real], for the discriminator initialised at f_0 = 0
    and trained by the function-space gradient flow of
    L(f) = mean_i a(f(x_fake_i)) − mean_j b(f(x_real_j)) under the kernel k (its NTK); u(t)
    from `dual_coefficients` (IPM: f_t(z) = t (mean_i k(z, x_fake_i) − mean_j k(z, x_real_j)),
    no kernel matrix needed; LSGAN: f_t(X) = (I − exp(−2t K W)) y).

    kernel: k(x1 [n1, ...], x2 [n2, ...]) -> [n1, n2], e.g. `stax_kernel(...)`. x_fake [N, ...]
    and x_real [M, ...] with the same point shape. loss: one of `LOSSES`. query: None returns
    the `Discriminator` (callable z [Q, ...] -> f_t(z) [Q], with `.coefficients` u [N + M] and
    `.points` X); points [Q, ...] return f_t(query) [Q]. k_real: k(x_real, x_real) [M, M] if
    already computed (it is then not recomputed). The solver options are `dual_coefficients`'.
    """
    x_fake, x_real = _points("x_fake", x_fake), _points("x_real", x_real)
    _same_point_shape(x_fake=x_fake, x_real=x_real)
    gan_loss(loss, generator_target)  # the loss name, checked before any kernel evaluation
    if method not in METHODS:
        raise ValueError(f"unknown dual solver '{method}'; valid: {', '.join(METHODS)}")
    _check_time(t)
    x_real = x_real.astype(x_fake.dtype)
    u = _coefficients(
        kernel, x_fake, x_real, t, k_real, loss=loss, method=method,
        generator_target=generator_target, lanczos_iters=int(lanczos_iters), rtol=float(rtol),
        atol=float(atol), fixed_steps=int(fixed_steps),
    )  # fmt: skip
    X = jnp.concatenate([x_fake, x_real])
    disc = Discriminator(kernel, X, u, x_fake.shape[0], block_size)
    return disc if query is None else disc(query)


@functools.partial(
    jax.jit,
    static_argnames=(
        "kernel", "loss", "method", "generator_target", "lanczos_iters", "rtol", "atol",
        "fixed_steps",
    ),
)  # fmt: skip
def _coefficients(kernel, x_fake, x_real, t, k_real, *, loss, method, **options):
    """u(t) [n] of `discriminator` (one compiled function per kernel, loss and shapes)."""
    if loss == "ipm" and method in ("auto", "closed_form"):
        K = None  # closed form: no kernel matrix
    else:
        K = gram_matrix(kernel, x_fake, x_real, k_real=k_real)
    n_fake, n_real = x_fake.shape[0], x_real.shape[0]
    return dual_coefficients(
        loss, K, n_fake, n_real, t, method=method, dtype=x_fake.dtype, **options
    )


def gram_matrix(
    kernel: KernelFn, x_fake: jax.Array, x_real: jax.Array, *, k_real: jax.Array | None = None
) -> jax.Array:
    """K = k(X, X) [n, n], X = [x_fake; x_real]: the fake rows k(x_fake, X) [N, n] and the real
    block k(x_real, x_real) [M, M] (`k_real`, when given, is not recomputed)."""
    X = jnp.concatenate([x_fake, x_real.astype(x_fake.dtype)])
    return gram_from_rows(kernel(x_fake, X), kernel(x_real, x_real) if k_real is None else k_real)


def gram_from_rows(k_fake: jax.Array, k_real: jax.Array) -> jax.Array:
    """K [n, n] from the fake rows k(x, X) [N, n] and the real block k(y, y) [M, M]."""
    n_fake = k_fake.shape[0]
    real_rows = jnp.concatenate([k_fake[:, n_fake:].T, k_real], axis=1)
    return jnp.concatenate([k_fake, real_rows], axis=0)


def ntk_mmd(kernel: KernelFn, x: jax.Array, y: jax.Array) -> jax.Array:
    """Squared maximum mean discrepancy [] of the kernel between the clouds x [N, ...], y [M, ...].

    MMD²_k(α̂, β̂) = mean_{i,i'} k(x_i, x_i') + mean_{j,j'} k(y_j, y_j') − 2 mean_{i,j} k(x_i, y_j)
    (the biased V-statistic, = ‖mean_i k(·, x_i) − mean_j k(·, y_j)‖² in the kernel's RKHS).
    With the NTK, the IPM discriminator after time t has objective L(f_t) = t · MMD²: the
    generator follows an NTK-MMD gradient flow.
    """
    x, y = _points("x", x), _points("y", y)
    _same_point_shape(x=x, y=y)
    return _mmd2(kernel, x, y.astype(x.dtype))


@functools.partial(jax.jit, static_argnums=0)
def _mmd2(kernel: KernelFn, x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean(kernel(x, x)) + jnp.mean(kernel(y, y)) - 2 * jnp.mean(kernel(x, y))
