"""Host allocator settings for XLA's CPU backend (Linux, glibc).

XLA:CPU allocates every buffer of an execution (temporaries and outputs) with `malloc` and
frees it afterwards. glibc serves blocks above its mmap threshold (at most 32 MiB) or from a
worker thread's arena (heaps of at most 64 MiB) with a fresh `mmap`, and `munmap`s them on
`free`: every step then page-faults all of its large activations again. On the 2-vCPU host of
`benchmarks/`, writing a fresh 64 MiB buffer costs 16 400 minor faults and 12.7 ms, against
2.0 ms into a reused one, and the SRVP and physics training steps spend 15-25 % of their time
in such faults.

`configure_host_memory()` makes glibc keep freed memory: one arena (the main heap, which
grows by `brk` without the 64 MiB heap limit), no `mmap` for large blocks, and no trimming
of the heap top (the peak of one step stays mapped for the next; resident memory stays at the
peak). It must run before JAX starts its CPU backend (the first computation, not
`import jax`): the arena limit binds only threads that have not allocated yet. The command
line entry points (`generative.core.cli.make_main`), `benchmarks/` and the test suite call it
first thing. For any other process, set the environment variable of `GLIBC_TUNABLES` below
before it starts.

It is process-wide: any other library in the process (PyTorch's CPU allocator included) gets
the same behaviour. Set ``GENERATIVE_HOST_MALLOC=system`` to leave glibc's defaults; it is
skipped on non-glibc systems and when a GPU/TPU JAX plugin is installed (the device holds the
activations there, and one arena would serialise the host threads of input pipelines).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import os
import platform
import warnings

__all__ = ["configure_host_memory", "GLIBC_TUNABLES", "host_memory_state"]

# mallopt parameter numbers (glibc <malloc.h>)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
# mallopt's int -1 becomes the size_t maximum: the heap top is never returned to the system
# (a 2 GiB threshold still trimmed, and re-faulted, the ~4 GB of a batch-128 physics step).
_NEVER_TRIM = -1
SETTINGS = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _NEVER_TRIM))
GLIBC_TUNABLES = (
    "glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:"
    "glibc.malloc.trim_threshold=4611686018427387904"
)
_ACCELERATOR_PLUGINS = (
    "jax_cuda12_plugin",
    "jax_cuda11_plugin",
    "jax_rocm60_plugin",
    "jax_rocm7_plugin",
    "libtpu",
)
_state = {"configured": False, "reason": "not called"}


def host_memory_state() -> dict:
    """{'configured': bool, 'reason': str}: what `configure_host_memory` did in this process."""
    return dict(_state)


def _libc():
    if platform.system() != "Linux":
        return None, f"not Linux ({platform.system()})"
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.mallopt.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None, "the C library is not glibc"
    return libc, ""


def configure_host_memory() -> bool:
    """Keep freed host memory in the process (see the module docstring). Returns whether the
    settings are in effect; idempotent."""
    if _state["configured"]:
        return True
    choice = os.environ.get("GENERATIVE_HOST_MALLOC", "retain").strip().lower()
    if choice not in ("retain", "system"):
        raise ValueError(
            f"GENERATIVE_HOST_MALLOC={choice!r} is not a valid choice; valid choices: retain, system"
        )
    if choice == "system":
        _state["reason"] = "GENERATIVE_HOST_MALLOC=system"
        return False
    if GLIBC_TUNABLES in os.environ.get("GLIBC_TUNABLES", ""):
        _state.update(configured=True, reason="GLIBC_TUNABLES set in the environment")
        return True
    found = [p for p in _ACCELERATOR_PLUGINS if importlib.util.find_spec(p) is not None]
    if found:
        _state["reason"] = f"accelerator plugin installed ({found[0]})"
        return False
    libc, why = _libc()
    if libc is None:
        _state["reason"] = why
        return False
    from jax._src import xla_bridge

    if xla_bridge.backends_are_initialized():
        warnings.warn(
            "configure_host_memory() was called after JAX started its backends, where the "
            "arena limit no longer binds XLA's threads; call it before the first computation, "
            f"or start the process with GLIBC_TUNABLES={GLIBC_TUNABLES}",
            RuntimeWarning,
            stacklevel=2,
        )
        _state["reason"] = "called after the JAX backends started"
        return False
    if not all(libc.mallopt(param, value) == 1 for param, value in SETTINGS):
        _state["reason"] = "mallopt refused a setting"
        return False
    _state.update(configured=True, reason="mallopt")
    return True
