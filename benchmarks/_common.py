"""Shared by the benchmark scripts."""

from __future__ import annotations

import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from generative.core.cpu_codegen import configure_cpu_codegen  # noqa: E402
from generative.core.host_memory import configure_host_memory, host_memory_state  # noqa: E402

__all__ = [
    "configure_host",
    "configure_host_memory",
    "host_memory_state",
    "torch_reference",
    "torch_glibc_default",
    "alternating",
    "cpu_model",
    "jax_matmul_rate",
    "torch_matmul_rate",
]


def configure_host() -> None:
    """What the command line does before JAX starts its backend: the host allocator
    (`generative.core.host_memory`) and XLA:CPU's vector width (`generative.core.cpu_codegen`).
    Call first thing, before the first computation."""
    configure_host_memory()
    configure_cpu_codegen()


def cpu_model() -> str:
    """The host's CPU model and core count, as every speed figure states them."""
    name = "unknown CPU"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} cores)"


def jax_matmul_rate(size: int = 1024, repeats: int = 20) -> float:
    """The host's float32 matrix-product rate with JAX in FLOP/s: size³ products, 8 chained
    per call so that dispatch is negligible, median of `repeats`."""
    import jax

    a = jax.random.normal(jax.random.PRNGKey(0), (size, size), "float32") / size**0.5
    chain = jax.jit(lambda a: jax.lax.fori_loop(0, 8, lambda i, c: c @ a, a))
    jax.block_until_ready(chain(a))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(chain(a))
        times.append((time.perf_counter() - t0) / 8)
    return 2 * size**3 / statistics.median(times)


def torch_matmul_rate(torch, threads: int, size: int = 1024, repeats: int = 20) -> float:
    """The same for PyTorch at `threads` intra-op threads (left set)."""
    torch.set_num_threads(threads)
    a = torch.randn(size, size) / size**0.5
    torch.mm(a, a)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, a)
        times.append(time.perf_counter() - t0)
    return 2 * size**3 / statistics.median(times)


# Pause before each timed call of `alternating` when another runtime (PyTorch, NumPy's BLAS)
# takes turns with ours. PyTorch's OpenMP workers keep spinning for a few ms after a call
# returns and take the cores from the call that follows. Measured on a 2-core AMD EPYC with the
# conv VAE step (`generative_step.py`): ours right after PyTorch 40.9 ms, after a 2 / 5 / 10 /
# 20 ms pause 39.6 / 36.9 / 36.1 / 35.7 ms, PyTorch about 36 ms throughout; pauses of 50 ms and
# more slow both sides down again (46.8 / 39.6 ms at 50 ms: idle cores). 10 ms leaves each call
# the machine as a training loop of its own would.
SETTLE_S = 0.01


def alternating(fns, repeats: int, warmup: int = 1, settle: float = 0.0) -> list[list[float]]:
    """Times each of `fns` (callables that block until their result is ready) `repeats`
    times, one call of each in turn (a, b, a, b, ...) after `warmup` calls of each, so that a
    slow phase of the host falls on both sides of a comparison alike. `settle`: seconds to
    wait before each timed call (`SETTLE_S` when the sides are different runtimes, so that
    neither is timed while the other's worker threads still spin). -> one list of seconds per
    function."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times):
            if settle:
                time.sleep(settle)
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return times


def torch_reference(threads: int = 2):
    """`benchmarks/torch_reference.py` with torch set to `threads` threads, or None when torch
    is not installed (it is an optional benchmark-only dependency). In-process: it shares the
    host allocator settings of `configure_host_memory` with our JAX code."""
    try:
        import torch
    except ImportError:
        return None
    import torch_reference

    torch.set_num_threads(threads)
    return torch_reference


def torch_glibc_default(case: str, kwargs: dict, repeats: int, warmup: int, threads: int = 2):
    """The same PyTorch case in a fresh process with glibc's default allocator (as the
    reference code runs when launched on its own): {'times': [...], 'params': n}, or None when
    torch is missing or the run fails (its error is printed)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return None
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    cmd = [
        sys.executable,
        str(HERE / "torch_reference.py"),
        "--case",
        case,
        "--kwargs",
        json.dumps(kwargs),
        "--repeats",
        str(repeats),
        "--warmup",
        str(warmup),
        "--threads",
        str(threads),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    print(f"PyTorch subprocess failed ({case}): {proc.stderr.strip().splitlines()[-1:]}")
    return None
