"""Vector width of the code XLA's CPU backend generates for fused elementwise loops.

XLA:CPU compiles each fusion with LLVM and asks for 256-bit vectors by default, also on CPUs
with AVX-512. `benchmarks/cpu_codegen.py` compiles workloads at both widths in one process
(per-program compile options) and times them in turn. On an AMD EPYC (Zen 4, AVX-512) host,
512-bit vectors make gantk's LSGAN-∞ generator step (n = 1000; the closed-form NTK recursion,
square roots and divisions over a [500, 1000] matrix) 1.2× faster, and leave the steps made of
matrix products and convolutions (GAN, VAE, SRVP, the separation models, LEADS on
Gray–Scott) within 2 % (docs/speed.md).

`configure_cpu_codegen()` adds ``--xla_cpu_prefer_vector_width=512`` to ``XLA_FLAGS`` where
that was measured: AMD CPUs with AVX-512. Elsewhere XLA's default stays: on Intel CPUs it is
not measured (512-bit code can lower their clock), and without AVX-512 the hint changes
nothing. It must run before JAX starts its CPU backend (the first computation), like
`generative.core.host_memory.configure_host_memory`; the command-line entry points and
`benchmarks/` call both first thing. GPU/TPU programs are not affected:
the flag is read by the CPU compiler only.

``GENERATIVE_CPU_VECTOR_WIDTH`` = ``auto`` (default, the rule above), ``256`` (XLA's default,
nothing set) or ``512`` (always). A ``--xla_cpu_prefer_vector_width`` already in ``XLA_FLAGS``
wins. Any width gives the same results up to float32 rounding.

Matrix products alone in YNNPACK: `products_only_options()`
-----------------------------------------------------------
XLA:CPU hands whole chains of a program to its YNNPACK library by default: a matrix product
together with the reductions and elementwise operations around it (batch-norm statistics,
maxout's maximum and its gradient, ...). In the 2-D adversarial steps those fused chains run
far below the host's product rate. `benchmarks/cpu_codegen.py --setting fusion` compiles each
workload with XLA's default and with YNNPACK taking the matrix products only, each alone
(`LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT`, XLA's own loops taking the rest), in one process, calls
alternating. On an Intel Xeon host (2 cores) the GAN (10 runs vmapped), ALI and WGAN-GP steps
(mode-table cells, 20 runs vmapped) were 1.20x, 1.24x and 1.29x faster that way; the programs
made of convolutions were not (conv VAE 0.99x, VQ-VAE 0.90x, SRVP 0.93x, DDPM on digits 0.74x,
LEADS on Gray-Scott 0.65x; docs/speed.md has the whole table). The choice is therefore a
per-program compile option (`jax.jit(..., compiler_options=...)`) that only the measured
programs ask for: the GAN and ALI runs on 2-D data (`Experiment.compiler_options`) and the
mode-coverage table (`generative.modes`).

`products_only_options()` returns that option on CPU where it was measured (Intel CPUs) and
``{}`` elsewhere: on GPU/TPU (their programs stay XLA's own) and on AMD CPUs (not measured
there). ``GENERATIVE_CPU_LIBRARY_FUSION`` = ``auto`` (default, that rule), ``dots`` (always on
CPU) or ``default`` (never). Results are equal up to float32 rounding.

XLA's own convolutions: `xla_convolutions_options()`
----------------------------------------------------
By default YNNPACK also computes the convolutions. Its kernel gradients (a convolution with
batch and features swapped) run at 57–71 GFLOP/s on an Intel Xeon (2 cores), where XLA's own
convolution reaches 141–289 GFLOP/s on the same 3×3 layers (`benchmarks/layers.py --tables
kgrad` has the comparison with PyTorch). `xla_convolutions_options()` leaves YNNPACK the
matrix products and reductions and XLA the convolutions
(``LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE``); programs compiled with it
are traced under `generative.layers.xla_kernel_gradients`, so that every kernel gradient is
that convolution (`generative.core.train.run` does both; `uses_xla_convolutions(options)`
says whether a set of options is this one). Training steps in one process, calls alternating
(Intel Xeon, 2 cores): SRVP b16 2303 → 1585 ms (1.45×), Moving MNIST separation model b16
1407 → 1095 ms (1.28×); the conv VAE (28×28, 0.94×) and the DDPM U-Net on digits (0.99×)
are not faster, so they keep YNNPACK's convolutions. The programs that ask for it: SRVP
training (`video.train`) and the separation models' training (`physics.train`).
``GENERATIVE_CPU_CONVOLUTIONS`` = ``auto`` (default: on Intel CPUs, where it was measured),
``xla`` (always on CPU) or ``ynn`` (never).
"""

from __future__ import annotations

import os
import pathlib
import warnings

__all__ = [
    "configure_cpu_codegen",
    "cpu_codegen_state",
    "measured_rule",
    "CHOICES",
    "FLAG",
    "products_only_options",
    "products_only_rule",
    "LIBRARY_FUSION_CHOICES",
    "PRODUCTS_ONLY_OPTION",
    "CONVOLUTION_CHOICES",
    "XLA_CONVOLUTIONS_OPTION",
    "xla_convolutions_options",
    "uses_xla_convolutions",
]

FLAG = "--xla_cpu_prefer_vector_width"
CHOICES = ("auto", "256", "512")
LIBRARY_FUSION_CHOICES = ("auto", "dots", "default")
PRODUCTS_ONLY_OPTION = {
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
}
CONVOLUTION_CHOICES = ("auto", "xla", "ynn")
_YNN_FUSION_TYPE = "xla_cpu_experimental_ynn_fusion_type"
XLA_CONVOLUTIONS_OPTION = {
    _YNN_FUSION_TYPE: "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"
}
_state = {"vector_width": None, "reason": "not called"}


def cpu_codegen_state() -> dict:
    """{'vector_width': 512 | 256 | None (an XLA_FLAGS setting of the user's), 'reason'}."""
    return dict(_state)


def _cpu_info(path: str = "/proc/cpuinfo") -> tuple[str, set[str]]:
    """(vendor id, flags) of the first processor listed; ('', set()) where not readable."""
    vendor, flags = "", set()
    try:
        text = pathlib.Path(path).read_text()
    except OSError:
        return vendor, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "vendor_id" and not vendor:
            vendor = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
        if vendor and flags:
            break
    return vendor, flags


def measured_rule(vendor: str, flags: set[str]) -> tuple[int, str]:
    """(width, why) of the `auto` choice for a CPU."""
    if "avx512f" not in flags:
        return 256, "no AVX-512"
    if vendor != "AuthenticAMD":
        return 256, f"AVX-512 on {vendor or 'an unknown vendor'}, not measured"
    return 512, "AMD with AVX-512"


def configure_cpu_codegen(cpuinfo: str = "/proc/cpuinfo") -> int | None:
    """Choose the vector width of XLA:CPU's generated loops (see the module docstring).
    Returns the width now in effect (None: set by the user's XLA_FLAGS); idempotent."""
    choice = os.environ.get("GENERATIVE_CPU_VECTOR_WIDTH", "auto").strip().lower()
    if choice not in CHOICES:
        raise ValueError(
            f"GENERATIVE_CPU_VECTOR_WIDTH={choice!r} is not a valid choice; "
            f"valid choices: {', '.join(CHOICES)}"
        )
    flags = os.environ.get("XLA_FLAGS", "")
    if FLAG in flags:
        mine = f"{FLAG}=512" in flags.split() and _state["vector_width"] == 512
        if not mine:
            _state.update(vector_width=None, reason="set in XLA_FLAGS")
        return _state["vector_width"]
    if choice == "auto":
        width, why = measured_rule(*_cpu_info(cpuinfo))
    else:
        width, why = int(choice), f"GENERATIVE_CPU_VECTOR_WIDTH={choice}"
    if width == 512:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized():
            warnings.warn(
                "configure_cpu_codegen() was called after JAX started its backends, where "
                f"XLA_FLAGS no longer applies; call it before the first computation, or start "
                f"the process with XLA_FLAGS={FLAG}=512",
                RuntimeWarning,
                stacklevel=2,
            )
            _state.update(vector_width=256, reason="called after the JAX backends started")
            return 256
        os.environ["XLA_FLAGS"] = f"{flags} {FLAG}=512".strip()
    _state.update(vector_width=width, reason=why)
    return width


def products_only_rule(vendor: str) -> bool:
    """The `auto` choice of `products_only_options` and `xla_convolutions_options` for a CPU
    vendor: both measured faster on Intel CPUs; elsewhere not measured, so XLA's default
    stays."""
    return vendor == "GenuineIntel"


def _measured_option(
    env: str, choices: tuple[str, ...], option: dict, backend: str | None, cpuinfo: str
) -> dict:
    """`option` on CPU where ``env`` (choices: auto, the one that always applies it, the one
    that never does) says so, `auto` meaning on Intel CPUs (`products_only_rule`), else ``{}``."""
    choice = os.environ.get(env, "auto").strip().lower()
    if choice not in choices:
        raise ValueError(
            f"{env}={choice!r} is not a valid choice; valid choices: {', '.join(choices)}"
        )
    if backend is None:
        import jax

        backend = jax.default_backend()
    if backend != "cpu" or choice == choices[2]:
        return {}
    if choice == "auto" and not products_only_rule(_cpu_info(cpuinfo)[0]):
        return {}
    return dict(option)


def products_only_options(backend: str | None = None, cpuinfo: str = "/proc/cpuinfo") -> dict:
    """Compile options (for `jax.jit(..., compiler_options=...)`) of a program measured faster
    with YNNPACK taking the matrix products alone, for `backend` (default: JAX's default
    backend): that option on CPU where the rule (or ``GENERATIVE_CPU_LIBRARY_FUSION``) says so,
    otherwise ``{}`` (XLA's own choice). See the module docstring."""
    return _measured_option(
        "GENERATIVE_CPU_LIBRARY_FUSION",
        LIBRARY_FUSION_CHOICES,
        PRODUCTS_ONLY_OPTION,
        backend,
        cpuinfo,
    )


def xla_convolutions_options(backend: str | None = None, cpuinfo: str = "/proc/cpuinfo") -> dict:
    """Compile options of a program measured faster with XLA's own convolutions (YNNPACK
    keeping the matrix products and reductions), for `backend` (default: JAX's default
    backend): `XLA_CONVOLUTIONS_OPTION` on CPU where the rule (Intel CPUs) or
    ``GENERATIVE_CPU_CONVOLUTIONS`` says so, otherwise ``{}``. See the module docstring."""
    return _measured_option(
        "GENERATIVE_CPU_CONVOLUTIONS",
        CONVOLUTION_CHOICES,
        XLA_CONVOLUTIONS_OPTION,
        backend,
        cpuinfo,
    )


def uses_xla_convolutions(options: dict | None) -> bool:
    """Whether a program compiled with `options` has XLA's own convolutions: its YNNPACK
    fusion types are given and include no convolution (then its layers should be traced under
    `generative.layers.xla_kernel_gradients`)."""
    kinds = (options or {}).get(_YNN_FUSION_TYPE)
    return kinds is not None and "CONVOLUTION" not in str(kinds)
