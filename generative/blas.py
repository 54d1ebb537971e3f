"""Float32 matrix products on CPU by MKL's sgemm, as an XLA FFI custom call.

`dot(a, b, trans_a, trans_b)` is `op(a) @ op(b)` (op: transpose of the last two axes when
asked). On CPU, for float32 operands and when the backend is ready (below), it is one XLA
FFI call (`generative/csrc/blas_ffi.cc`) that runs MKL's single-threaded `sgemm` in parts on
XLA's own intra-op thread pool; everywhere else (GPU/TPU, other dtypes, backend not ready)
it is XLA's `dot_general`. The choice between the two is made when the computation is
lowered (`lax.platform_dependent`), so one program runs unchanged on every platform.

Why: XLA's CPU backend multiplies matrices with Eigen, which is near the machine's peak on
square products (331 GFLOP/s for 2048³ on this 2-core host) but not on the long products
with a narrow output that kernel gradients are made of: [245760, 256]ᵀ[245760, 128] runs at
162 GFLOP/s, against 269 here (298 against 199 at [.., 512]ᵀ[.., 256];
`benchmarks/layers.py --tables blas`). Those products are where SRVP's and the physics
models' training steps lost to PyTorch (whose oneDNN kernel gradients run at ~300 GFLOP/s).

Differentiable to any order (a custom VJP whose backward is made of `dot` again) and
batched under `vmap` (the call loops over the batch). Forward-mode differentiation is not
supported, as for any custom VJP; `generative.layers` uses `dot` only inside backward
passes, which are custom VJPs already.

The backend: the C++ source is compiled once per (source, jaxlib, MKL) into
`$GENERATIVE_CACHE_DIR` (default `~/.cache/generative`) with `$CXX` (default `g++`) against
jaxlib's FFI headers and the `mkl` wheel's libraries (in the environment's `lib/`), then
registered with XLA. Set `GENERATIVE_CPU_GEMM=xla` to use XLA's products everywhere.
Without a compiler or MKL the backend is not ready, `status()` says why, and `dot` is
XLA's: results are the same, to rounding.
"""

from __future__ import annotations

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

__all__ = ["dot", "shifted_products", "ready", "status", "CPU_GEMMS"]

CPU_GEMMS = ("mkl", "xla")
_TARGET = "generative_blas_sgemm"
_SHIFTED = "generative_blas_shifted_products"
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
    source = _SOURCE.read_bytes()
    key = hashlib.sha256(
        b"\0".join([source, jax.__version__.encode(), str(mkl).encode(), cxx.encode()])
    ).hexdigest()[:16]
    cache = pathlib.Path(
        os.environ.get("GENERATIVE_CACHE_DIR", pathlib.Path.home() / ".cache" / "generative")
    )
    target = cache / f"blas_ffi-{key}.so"
    if target.exists():
        return str(target), ""
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=cache)
    os.close(fd)
    cmd = [cxx, "-O2", "-std=c++17", "-fPIC", "-shared", "-w", f"-I{include}", str(_SOURCE)]
    cmd += ["-o", tmp, f"-L{mkl}", *(f"-l:{lib}" for lib in _MKL_LIBS), f"-Wl,-rpath,{mkl}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
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
                    for name, fn in ((_TARGET, lib.BlasSgemm), (_SHIFTED, lib.BlasShiftedProducts)):
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


def _xla(a, b, trans_a, trans_b, precision=None):
    nb = a.ndim - 2
    batch = tuple(range(nb))
    ca = nb if trans_a else nb + 1
    cb = nb + 1 if trans_b else nb
    out = lax.dot_general(a, b, (((ca,), (cb,)), (batch, batch)), precision=precision)
    return out


def _ffi(a, b, trans_a, trans_b):
    m = a.shape[-1] if trans_a else a.shape[-2]
    n = b.shape[-2] if trans_b else b.shape[-1]
    out = jax.ShapeDtypeStruct(a.shape[:-2] + (m, n), jnp.float32)
    call = jax.ffi.ffi_call(_TARGET, out, vmap_method="broadcast_all")
    return call(a, b, trans_a=np.int64(trans_a), trans_b=np.int64(trans_b))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _dot(a, b, trans_a, trans_b, precision):
    return lax.platform_dependent(
        a,
        b,
        cpu=lambda a, b: _ffi(a, b, trans_a, trans_b),
        default=lambda a, b: _xla(a, b, trans_a, trans_b, precision),
    )


def _dot_fwd(a, b, trans_a, trans_b, precision):
    return _dot(a, b, trans_a, trans_b, precision), (a, b)


def _dot_bwd(trans_a, trans_b, precision, res, g):
    a, b = res
    # C = A B with A = op(a), B = op(b): dA = g Bᵀ, dB = Aᵀ g, then undo op.
    if trans_a:  # da = (g Bᵀ)ᵀ = B gᵀ = op(b) gᵀ
        da = _dot(b, g, trans_b, True, precision)
    else:  # da = g op(b)ᵀ
        da = _dot(g, b, False, not trans_b, precision)
    if trans_b:  # db = (Aᵀ g)ᵀ = gᵀ op(a)
        db = _dot(g, a, True, trans_a, precision)
    else:  # db = op(a)ᵀ g
        db = _dot(a, g, not trans_a, False, precision)
    return da, db


_dot.defvjp(_dot_fwd, _dot_bwd)


def dot(a, b, trans_a: bool = False, trans_b: bool = False, precision=None):
    """op(a) @ op(b) for a [..., M, K] (or [..., K, M] with trans_a) and b [..., K, N] (or
    [..., N, K] with trans_b), with equal leading (batch) dimensions. MKL's sgemm on CPU for
    float32 when `ready()`, XLA's `dot_general` otherwise (see the module docstring)."""
    if a.ndim < 2 or a.ndim != b.ndim or a.shape[:-2] != b.shape[:-2]:
        raise ValueError(
            f"dot needs operands of the same rank >= 2 with equal batch dimensions, got "
            f"{a.shape} and {b.shape}"
        )
    k_a = a.shape[-2] if trans_a else a.shape[-1]
    k_b = b.shape[-1] if trans_b else b.shape[-2]
    if k_a != k_b:
        raise ValueError(
            f"dot: contraction lengths differ ({k_a} and {k_b}) for shapes {a.shape}, "
            f"{b.shape}, trans_a={trans_a}, trans_b={trans_b}"
        )
    if a.dtype == jnp.float32 and b.dtype == jnp.float32 and ready():
        return _dot(a, b, bool(trans_a), bool(trans_b), precision)
    return _xla(a, b, bool(trans_a), bool(trans_b), precision)


def _shifted_ffi(src, g, starts):
    out = jax.ShapeDtypeStruct((len(starts), src.shape[-1], g.shape[-1]), jnp.float32)
    call = jax.ffi.ffi_call(_SHIFTED, out, vmap_method="broadcast_all")
    flat = np.asarray(starts, np.int64).reshape(-1)
    return call(src, g, nd=np.int64(g.ndim - 2), starts=flat)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _shifted(src, g, starts, fallback):
    return lax.platform_dependent(
        src, g, cpu=lambda s, g: _shifted_ffi(s, g, starts), default=fallback
    )


def _shifted_fwd(src, g, starts, fallback):
    return _shifted(src, g, starts, fallback), (src, g)


def _shifted_bwd(starts, fallback, res, ct):
    return jax.vjp(fallback, *res)[1](ct)  # second-order use only: XLA's form is enough


_shifted.defvjp(_shifted_fwd, _shifted_bwd)


def shifted_products(src, g, starts, fallback):
    """out[s] = Σ_{n, q} src[n, q + starts[s]]ᵀ g[n, q] for src [N, *H, M] and g [N, *Q, C]
    (q over the Q positions of g; every window inside src) -> [S, M, C]: the products of a
    kernel gradient, one per tap or block shift. On CPU for float32 when `ready()`, one FFI
    call that never copies a window whole: it takes g's rows in chunks and, for each chunk
    and shift, copies the matching src rows into a buffer that stays in cache before the
    product (all shifts of a chunk in turn, so src is read from memory about once).
    Otherwise `fallback(src, g)`, which must compute the same (XLA's form); it is also the
    backward pass (used only by second-order differentiation)."""
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
    if src.dtype == jnp.float32 and g.dtype == jnp.float32 and ready():
        return _shifted(src, g, starts, fallback)
    return fallback(src, g)
