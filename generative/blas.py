"""Float32 matrix products on CPU by MKL, through XLA FFI calls: the products of a
convolution's kernel gradient (`shifted_products`), plain 2-D products (`matmul`, which
`generative.layers.Dense` uses) and the phases of a transposed convolution by Winograd's
algorithm (`phase_correlations`, which `generative.layers`' transposed convolutions use).

`shifted_products(src, g, starts)` is out[s] = Σ_{n,q} src[n, q + starts[s]]ᵀ g[n, q]: one
[M, C] product per tap (stride 1) or per block shift of the space-to-depth input (larger
strides), summed over the N·Q output positions, which is what `generative.layers`'
kernel gradients are made of (`valid_conv_kernel_grad`). On CPU, for float32 operands and
when the backend is ready (below), it is one XLA FFI call (`generative/csrc/blas_ffi.cc`):
MKL's single-threaded `sgemm` on chunks of 512 rows, run on XLA's own intra-op thread pool,
each chunk's window rows copied into a buffer that stays in cache (no window is ever copied
whole, and all shifts of a chunk are done while its rows are cached). Everywhere else
(GPU/TPU, other dtypes, backend not ready) it is XLA's products. The platform is chosen
when the computation is lowered (`lax.platform_dependent`), so one program runs unchanged
on every platform.

Why: XLA's CPU backend multiplies matrices with Eigen, which is near the machine's peak on
square products (331 GFLOP/s for 2048³ on this 2-core host) but not on the long products
with a narrow output that kernel gradients are made of: [245760, 256]ᵀ[245760, 128] runs
at 162 GFLOP/s in Eigen against 269 in MKL, and the windows XLA cuts for them are copies
as large as the layer's input. SRVP's 4×4 stride-2 kernel gradients at 960 frames went
from 0.39-0.53 s to 0.21-0.23 s, PyTorch's (oneDNN) figures (`benchmarks/layers.py
--tables torch`).

`matmul(a, b, trans_a, trans_b)` is one call to MKL's sgemm, split over XLA's thread pool
(along the contraction when the output is small next to it, else along the longer output
side); its backward is `matmul` again. On the physics WaveEq MLPs' shapes it ran 1.2–1.5×
XLA's ([3200, 1200]×[1200, 4096] and its two gradients), and the WaveEq training step went
from 0.94/0.98 to 0.88/0.85 s (A/B, two rounds).

`shifted_products` is differentiable (its backward, used only by second-order
derivatives, is XLA's form) and
batched under `vmap` (the call loops over the batch), and partitioned on a mesh of several
CPU devices: with the frames sharded, each device multiplies its own and the results are
summed over the mesh axis (`custom_partitioning`). GPU and TPU programs never contain it.

`phase_correlations(x, kernels, offsets_y, offsets_x, out_hw, tile)` computes the S_y·S_x
stride-1 correlations of one input that make up a transposed convolution, written
interleaved, as Winograd F(m×m, r×r) (`winograd_matrices`): per phase, input tiles of
(m + r − 1)² points are transformed (in registers, 16 channels at a time; tiles across the
border read zeros, so no padded copy is made), multiplied by the transformed kernels with
one sgemm per point, and transformed back into their output places. With m = 2, r = 2 that
is 9 products per 4 outputs instead of 16. SRVP's decoder layers at 160 frames (forward):
23–39 ms against XLA's 33–59 ms (F(2×2, 2×2)), and the best-of-100 evaluation went from
4.11 to 2.46 s.

The backend: the C++ source is compiled once per (source, jax, MKL, compiler) into
`$GENERATIVE_CACHE_DIR` (default `~/.cache/generative`) with `$CXX` (default `g++`)
against jaxlib's FFI headers and the `mkl` wheel's libraries (the environment's `lib/`, or
`$GENERATIVE_MKL_DIR`), then registered with XLA. `GENERATIVE_CPU_GEMM=xla` (or a
`backend("xla")` block, at trace time) keeps XLA's products. Without a compiler or MKL the
backend is not ready, `status()` says why, and XLA's products are used: the same results,
to rounding.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding, PartitionSpec

__all__ = [
    "matmul",
    "phase_correlations",
    "winograd_matrices",
    "shifted_products",
    "cpu_or",
    "enabled",
    "backend",
    "ready",
    "status",
    "CPU_GEMMS",
]

CPU_GEMMS = ("mkl", "xla")
_SHIFTED = "generative_blas_shifted_products"
_GEMM = "generative_blas_sgemm"
_WINOGRAD = "generative_blas_winograd"
_SOURCE = pathlib.Path(__file__).resolve().parent / "csrc" / "blas_ffi.cc"
_MKL_LIBS = ("libmkl_intel_lp64.so.3", "libmkl_sequential.so.3", "libmkl_core.so.3")
_lock = threading.Lock()
_state: dict = {}


def _mkl_dir() -> pathlib.Path | None:
    """The directory holding the MKL wheel's libraries (`pip install mkl` puts them in the
    environment's lib/), or $GENERATIVE_MKL_DIR."""
    candidates = [os.environ.get("GENERATIVE_MKL_DIR", "")]
    candidates += [os.path.join(p, "lib") for p in (sys.prefix, sys.base_prefix)]
    for c in candidates:
        if c and all(os.path.exists(os.path.join(c, lib)) for lib in _MKL_LIBS):
            return pathlib.Path(c)
    return None


def _build() -> tuple[str | None, str]:
    """(path of the compiled library, '') or (None, why it is not available)."""
    choice = os.environ.get("GENERATIVE_CPU_GEMM", "mkl")
    if choice not in CPU_GEMMS:
        raise ValueError(
            f"unknown GENERATIVE_CPU_GEMM={choice!r}; valid choices: {list(CPU_GEMMS)}"
        )
    if choice == "xla":
        return None, "GENERATIVE_CPU_GEMM=xla"
    mkl = _mkl_dir()
    if mkl is None:
        return None, f"MKL not found ({_MKL_LIBS[0]} in {sys.prefix}/lib; pip install mkl)"
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not cxx:
        return None, "no C++ compiler (set CXX or install g++)"
    include = jax.ffi.include_dir()
    flags = ["-O3", "-std=c++17", "-fPIC", "-shared", "-w", f"-I{include}"]
    libs = [f"-L{mkl}", *(f"-l:{lib}" for lib in _MKL_LIBS), f"-Wl,-rpath,{mkl}"]
    try:
        source = _SOURCE.read_bytes()
        key = hashlib.sha256(b"\0".join([source, " ".join([cxx, *flags, *libs]).encode()]))
        cache = pathlib.Path(
            os.environ.get("GENERATIVE_CACHE_DIR", pathlib.Path.home() / ".cache" / "generative")
        )
        target = cache / f"blas_ffi-{key.hexdigest()[:16]}.so"
        if target.exists():
            return str(target), ""
        cache.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=cache)
        os.close(fd)
    except OSError as e:  # no source (an install without package data), unwritable cache
        return None, f"cannot build {_SOURCE.name}: {e}"
    try:
        proc = subprocess.run(
            [cxx, *flags, str(_SOURCE), "-o", tmp, *libs],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        os.unlink(tmp)
        return None, f"compiling {_SOURCE.name} failed: {e}"
    if proc.returncode:
        os.unlink(tmp)
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"compiling {_SOURCE.name} failed: {last}"
    os.replace(tmp, target)  # atomic: concurrent builders (test workers) agree
    return str(target), ""


def _load() -> dict:
    with _lock:
        if not _state:
            path, why = _build()
            if path is not None:
                try:
                    lib = ctypes.CDLL(path)
                    for name, fn in (
                        (_SHIFTED, lib.BlasShiftedProducts),
                        (_GEMM, lib.BlasSgemm),
                        (_WINOGRAD, lib.BlasWinograd),
                    ):
                        jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(fn), platform="cpu")
                    _state["lib"] = lib
                except (OSError, AttributeError) as e:
                    path, why = None, f"loading {path} failed: {e}"
            _state.update(path=path, why=why)
    return _state


def ready() -> bool:
    """Whether CPU float32 products go to MKL (compiling the backend on first call)."""
    return _load()["path"] is not None


def status() -> str:
    """One line: the backend in use for CPU float32 products, and why."""
    state = _load()
    if state["path"]:
        return f"mkl ({state['path']})"
    return f"xla ({state['why']})"


_override: list[str] = []


@contextlib.contextmanager
def backend(choice: str):
    """Trace the computations in this block with CPU products by `choice` ("mkl" or "xla");
    "mkl" still needs `ready()`. It applies when a function is traced: a function jitted
    before keeps the choice it was traced with."""
    if choice not in CPU_GEMMS:
        raise ValueError(f"unknown CPU GEMM backend {choice!r}; valid choices: {list(CPU_GEMMS)}")
    _override.append(choice)
    try:
        yield
    finally:
        _override.pop()


def enabled(*arrays) -> bool:
    """Whether CPU products of these operands go to MKL: all float32, `ready()`, and no
    `backend("xla")` block around."""
    if _override and _override[-1] == "xla":
        return False
    return all(a.dtype == jnp.float32 for a in arrays) and ready()


def cpu_or(cpu, default, *operands):
    """`cpu(*operands)` when lowered for CPU and `enabled(*operands)`, else
    `default(*operands)` (chosen per platform when lowered; only one branch is compiled)."""
    if enabled(*operands):
        return lax.platform_dependent(*operands, cpu=cpu, default=default)
    return default(*operands)


def _shifted_xla(src, g, starts):
    q = g.shape[1:-1]
    g2 = g.reshape(-1, g.shape[-1])
    windows = [src[(slice(None), *(slice(a, a + n) for a, n in zip(s, q)))] for s in starts]
    return jnp.stack([_gemm_xla(w.reshape(g2.shape[0], -1), g2, True, False) for w in windows])


def _shifted_ffi(src, g, starts):
    out = jax.ShapeDtypeStruct((len(starts), src.shape[-1], g.shape[-1]), jnp.float32)
    call = jax.ffi.ffi_call(_SHIFTED, out, vmap_method="broadcast_all")
    flat = np.asarray(starts, np.int64).reshape(-1)
    return call(src, g, nd=np.int64(g.ndim - 2), starts=flat)


@functools.partial(custom_partitioning, static_argnums=(2,))
def _shifted_sharded(src, g, starts):
    return _shifted_ffi(src, g, starts)


def _shifted_partition(starts, mesh, arg_shapes, result_shape):
    """Frames (the products' contraction) sharded on a mesh axis: each device multiplies its
    own frames and the [S, M, C] results are summed over that axis; other axes gathered."""
    del result_shape
    spec = arg_shapes[0].sharding.spec
    axis = spec[0] if len(spec) else None
    operands = (NamedSharding(mesh, PartitionSpec(axis)),) * 2

    def lower(src, g):
        out = _shifted_ffi(src, g, starts)
        return out if axis is None else lax.psum(out, axis)

    return mesh, lower, NamedSharding(mesh, PartitionSpec()), operands


_shifted_sharded.def_partition(
    partition=_shifted_partition,
    infer_sharding_from_operands=lambda starts, mesh, args, result: NamedSharding(
        mesh, PartitionSpec()
    ),
)


@functools.cache
def _shifted_cpu(starts):
    """The CPU call for these starts: partitioned (`_shifted_sharded`); under `vmap` the call
    loops over a leading batch axis instead (not partitioned)."""

    @jax.custom_batching.custom_vmap
    def call(src, g):
        return _shifted_sharded(src, g, starts)

    @call.def_vmap
    def call_vmap(axis_size, in_batched, src, g):
        del axis_size
        out = jax.vmap(
            lambda s, g: _shifted_ffi(s, g, starts), [0 if b else None for b in in_batched]
        )
        return out(src, g), True

    return call


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _shifted(src, g, starts):
    return lax.platform_dependent(
        src,
        g,
        cpu=_shifted_cpu(starts),
        default=lambda s, g: _shifted_xla(s, g, starts),
    )


def _shifted_fwd(src, g, starts):
    return _shifted(src, g, starts), (src, g)


def _shifted_bwd(starts, res, ct):  # second-order differentiation only
    return jax.vjp(lambda s, g: _shifted_xla(s, g, starts), *res)[1](ct)


_shifted.defvjp(_shifted_fwd, _shifted_bwd)


def shifted_products(src, g, starts):
    """out[s] = Σ_{n, q} src[n, q + starts[s]]ᵀ g[n, q] for src [N, *H, M] and g [N, *Q, C]
    (q over the Q positions of g; every window inside src) -> [S, M, C]: the products of a
    kernel gradient, one per tap or block shift. On CPU for float32 when `ready()`, one FFI
    call that never copies a window whole: it takes g's rows in chunks and, for each chunk
    and shift, copies the matching src rows into a buffer that stays in cache before the
    product, all shifts of a chunk in turn (src is read from memory about once). Otherwise
    XLA's products on window slices (all live at once: `generative.layers` has its own
    leaner form for that case)."""
    starts = tuple(tuple(int(a) for a in s) for s in starts)
    nd = g.ndim - 2
    if src.ndim != g.ndim or src.shape[0] != g.shape[0] or any(len(s) != nd for s in starts):
        raise ValueError(
            f"shifted_products: src {src.shape} and g {g.shape} need the same rank and frames,"
            f" and one offset per spatial axis in each start, got {starts}"
        )
    for s in starts:
        if any(a < 0 or a + q > h for a, q, h in zip(s, g.shape[1:-1], src.shape[1:-1])):
            raise ValueError(f"shifted_products: window at {s} of {g.shape} leaves {src.shape}")
    if enabled(src, g):
        return _shifted(src, g, starts)
    return _shifted_xla(src, g, starts)


def _gemm_xla(a, b, trans_a, trans_b, precision=None):
    dims = (((0 if trans_a else 1,), (1 if trans_b else 0,)), ((), ()))
    return lax.dot_general(a, b, dims, precision=precision)


def _gemm_ffi(a, b, trans_a, trans_b):
    m = a.shape[-1] if trans_a else a.shape[-2]
    n = b.shape[-2] if trans_b else b.shape[-1]
    out = jax.ShapeDtypeStruct(a.shape[:-2] + (m, n), jnp.float32)
    call = jax.ffi.ffi_call(_GEMM, out, vmap_method="broadcast_all")
    return call(a, b, trans_a=np.int64(trans_a), trans_b=np.int64(trans_b))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _gemm(a, b, trans_a, trans_b, precision):
    return lax.platform_dependent(
        a,
        b,
        cpu=lambda a, b: _gemm_ffi(a, b, trans_a, trans_b),
        default=lambda a, b: _gemm_xla(a, b, trans_a, trans_b, precision),
    )


def _gemm_fwd(a, b, trans_a, trans_b, precision):
    return _gemm(a, b, trans_a, trans_b, precision), (a, b)


def _gemm_bwd(trans_a, trans_b, precision, res, g):
    a, b = res  # C = op(a) op(b): d op(a) = g op(b)ᵀ, d op(b) = op(a)ᵀ g, then undo op
    if trans_a:
        da = _gemm(b, g, trans_b, True, precision)
    else:
        da = _gemm(g, b, False, not trans_b, precision)
    if trans_b:
        db = _gemm(g, a, True, trans_a, precision)
    else:
        db = _gemm(a, g, not trans_a, False, precision)
    return da, db


_gemm.defvjp(_gemm_fwd, _gemm_bwd)


def matmul(a, b, trans_a: bool = False, trans_b: bool = False, precision=None):
    """op(a) @ op(b) for 2-D a and b (op: the transpose when asked). On CPU for float32 when
    `ready()`, one FFI call to MKL's sgemm (split over XLA's thread pool); otherwise XLA's
    product. Differentiable to any order in reverse mode (its backward is `matmul` again);
    not in forward mode. Not partitioned: on a mesh of several CPU devices its operands
    are gathered (correct, redundant)."""
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"matmul takes 2-D operands, got {a.shape} and {b.shape}")
    k_a = a.shape[0] if trans_a else a.shape[1]
    k_b = b.shape[1] if trans_b else b.shape[0]
    if k_a != k_b:
        raise ValueError(
            f"matmul: contraction lengths differ ({k_a} and {k_b}) for {a.shape}, {b.shape}, "
            f"trans_a={trans_a}, trans_b={trans_b}"
        )
    if enabled(a, b):
        return _gemm(a, b, bool(trans_a), bool(trans_b), precision)
    return _gemm_xla(a, b, bool(trans_a), bool(trans_b), precision)


_WINOGRAD_POINTS = (0.0, 1.0, -1.0, -0.5, 0.5, 2.0, -2.0)


@functools.cache
def winograd_matrices(m: int, r: int):
    """(Bᵀ [n, n], Aᵀ [m, n], G [n, r]) of Winograd's F(m, r) for correlations (n = m + r − 1):
    y = Aᵀ[(G g) ⊙ (Bᵀ d)] is y_i = Σ_a g_a d_{i+a} for d of length n. Toom-Cook with the
    points 0, 1, −1, 2, −2, ½, −½ (as many as needed) and ∞: with V_k the Vandermonde matrix
    of k columns at those points (∞: the last coefficient), G = V_r, Aᵀ = V_mᵀ and Bᵀ = V_n⁻ᵀ
    (the transpose of the linear convolution's algorithm). float64."""
    n = m + r - 1
    if m < 1 or r < 1 or n - 1 > len(_WINOGRAD_POINTS):
        raise ValueError(f"winograd_matrices: F({m}, {r}) is not supported")
    points = _WINOGRAD_POINTS[: n - 1]

    def vander(cols):
        rows = [[p**j for j in range(cols)] for p in points] + [[0.0] * (cols - 1) + [1.0]]
        return np.array(rows, np.float64)

    return np.linalg.inv(vander(n)).T, vander(m).T, vander(r)


def _phase_xla(x, kernels, offsets_y, offsets_x, out_hw, precision=None):
    ho, wo = out_hw
    r_y, r_x = kernels.shape[2:4]
    low_y, low_x = max(0, -min(offsets_y)), max(0, -min(offsets_x))
    config = [(0, 0, 0)]
    for low, o, n, r, size in (
        (low_y, offsets_y, ho, r_y, x.shape[1]),
        (low_x, offsets_x, wo, r_x, x.shape[2]),
    ):
        config.append((low, max(0, max(o) + n + r - 1 - size), 0))
    x = lax.pad(x, jnp.zeros((), x.dtype), config + [(0, 0, 0)])
    offsets_y = tuple(o + low_y for o in offsets_y)
    offsets_x = tuple(o + low_x for o in offsets_x)
    dn = lax.conv_dimension_numbers(x.shape, kernels.shape[2:], ("NHWC", "HWIO", "NHWC"))
    rows = []
    for ry, oy in enumerate(offsets_y):
        cols = []
        for rx, ox in enumerate(offsets_x):
            xs = x[:, oy : oy + ho + r_y - 1, ox : ox + wo + r_x - 1]
            cols.append(
                lax.conv_general_dilated(
                    xs, kernels[ry, rx], (1, 1), "VALID", dimension_numbers=dn, precision=precision
                )
            )
        rows.append(jnp.stack(cols, axis=3))  # [F, Ho, Wo, Sx, C]
    return jnp.stack(rows, axis=2)  # [F, Ho, Sy, Wo, Sx, C]


def _phase_ffi(x, kernels, offsets_y, offsets_x, out_hw, tile):
    r = kernels.shape[2]
    bt, at, g = (jnp.asarray(a, jnp.float32) for a in winograd_matrices(tile, r))
    sy, sx = kernels.shape[:2]
    n = g.shape[0]
    # G w Gᵀ per phase, [Sy, Sx, r, r, Cin, Cout] -> [Sy·Sx, n, n, Cin, Cout], as r² broadcast
    # products (one fused loop; a dot feeding the call makes XLA's CPU compiler read the
    # call's attributes as JSON and fail)
    v = sum(
        jnp.outer(g[:, a], g[:, b])[None, None, :, :, None, None]
        * kernels[:, :, a, b][:, :, None, None]
        for a in range(r)
        for b in range(r)
    )
    v = v.reshape(sy * sx, n, n, *kernels.shape[-2:])
    out = jax.ShapeDtypeStruct(
        (x.shape[0], out_hw[0], sy, out_hw[1], sx, kernels.shape[-1]), jnp.float32
    )
    call = jax.ffi.ffi_call(_WINOGRAD, out, vmap_method="expand_dims")
    return call(
        x,
        v,
        bt,
        at,
        oy=np.asarray(offsets_y, np.int64),
        ox=np.asarray(offsets_x, np.int64),
    )


def phase_correlations(x, kernels, offsets_y, offsets_x, out_hw, tile=None, precision=None):
    """out[f, i, ry, j, rx] = Σ_{a, b} x[f, i + oy[ry] + a, j + ox[rx] + b] · kernels[ry, rx, a, b]
    with x [F, H, W, C_in] taken as zero outside (offsets may be negative) and kernels
    [S_y, S_x, r, r, C_in, C_out] -> [F, Ho, S_y, Wo, S_x, C_out] (out_hw = (Ho, Wo)): the S_y·S_x phases of a transposed convolution, each a
    stride-1 correlation of the same input at its own offset, written interleaved.
    On CPU for float32 when `ready()` and `tile` (m) divides Ho and Wo: one FFI call running
    Winograd's F(m×m, r×r) (`winograd_matrices`: (m + r − 1)² products per m×m outputs
    instead of m²·r², e.g. 25 against 64 for F(4×4, 2×2)), MKL's sgemm for the products;
    otherwise one XLA convolution per phase."""
    ho, wo = (int(a) for a in out_hw)
    offsets_y = tuple(int(a) for a in offsets_y)
    offsets_x = tuple(int(a) for a in offsets_x)
    if x.ndim != 4 or kernels.ndim != 6 or kernels.shape[:2] != (len(offsets_y), len(offsets_x)):
        raise ValueError(
            f"phase_correlations: x {x.shape} must be [F, H, W, C] and kernels {kernels.shape} "
            f"[S_y, S_x, r, r, C_in, C_out] with one offset per phase ({offsets_y}, {offsets_x})"
        )
    r_y, r_x = kernels.shape[2:4]
    xla = functools.partial(
        _phase_xla, offsets_y=offsets_y, offsets_x=offsets_x, out_hw=(ho, wo), precision=precision
    )
    if tile and r_y == r_x and ho % tile == 0 and wo % tile == 0 and enabled(x, kernels):
        ffi = functools.partial(
            _phase_ffi, offsets_y=offsets_y, offsets_x=offsets_x, out_hw=(ho, wo), tile=int(tile)
        )
        return lax.platform_dependent(x, kernels, cpu=ffi, default=xla)
    return xla(x, kernels)
