"""Convolution layers with flax's parameters, and CPU forms of their derivatives.

`Conv` and `ConvTranspose` take flax's fields and create flax's parameters ('kernel'
`[*window, C_in, C_out]`, 'bias'), so checkpoints and parameter counts are those of
`flax.linen.Conv` / `flax.linen.ConvTranspose`. The computation is chosen per platform when
the program is lowered (`jax.lax.platform_dependent`, one branch compiled):

- on GPU and TPU, flax's own module, unchanged (`tests/core/test_layers.py` compares the
  lowered programs);
- on CPU, forms whose derivatives XLA's CPU backend computes fast. They are ordinary JAX
  functions with custom JVPs (no custom VJP), so `jax.jvp`, `jax.linearize`, `jax.hessian`
  and reverse mode all work; reverse mode transposes the JVP's tangent map, which is written
  so that its transpose is the fast form:

  - the kernel tangent of a convolution is a sum of matrix products, one per tap (stride 1)
    or per block shift of the space-to-depth input (strided): its transpose, the kernel
    gradient, is those products. XLA's CPU backend computes a kernel gradient as a
    convolution with batch and features swapped, slower for layers of many output channels
    (`benchmarks/layers.py --tables kgrad`); layers of few output channels
    (`PRODUCTS_MIN_OUT_CHANNELS`) or, strided, of few output positions
    (`STRIDED_PRODUCTS_MIN_POSITIONS`) keep XLA's form;
  - the input tangent of a strided convolution is a stride-1 convolution of the
    space-to-depth input, whose transpose needs no input dilation (XLA's input gradient of a
    strided convolution, an input-dilated convolution, is slow on CPU);
  - a strided transposed convolution is `s^d` stride-1 correlations, one per output phase,
    interleaved ("sub-pixel" form), so that neither it nor its derivatives use an
    input-dilated convolution; each phase pads through the convolution's own padding, so
    that its input gradient is computed at the input's positions only. With few input
    channels (`MIRRORED_MAX_IN_CHANNELS`, `MIRRORED_ANY_SIZE_MAX_IN_CHANNELS`) its
    derivatives are instead those of the strided convolution it is the transpose of
    ("mirrored"): the input gradient is that convolution, the kernel gradient XLA's own
    kernel gradient of it;
  - layers with few channels on one side (taps · C_small <= C_large: an encoder's first
    layer on frames, a decoder's last) are one full-width matrix product on the
    space-to-depth input (im2col) or output (tap scatter); layers whose windows do not overlap
    (a decoder's 1×1 -> 4×4 first layer, an encoder's 4×4 -> 1×1 last layer) are one product
    and a reshape.

`GroupNorm` takes flax's fields and parameters too. On CPU it sums each example's channels
over the spatial axes first ([N, C], a reduction XLA's CPU backend vectorises along C), then
over each group's channels; flax's single reduction over (spatial, channels of the group), with
the groups' axis left in between, runs several times slower there (`benchmarks/layers.py
--tables norm`).

Every CPU form computes the same function as flax's layer (to 1e-10 in float64, tested with
first and second derivatives). `Dense` and `BatchNorm` are flax's modules.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.linen.dtypes import canonicalize_dtype, promote_dtype
from jax import lax
from jax.custom_derivatives import SymbolicZero

__all__ = [
    "plain_xla",
    "xla_kernel_gradients",
    "Dense",
    "BatchNorm",
    "GroupNorm",
    "Conv",
    "ConvTranspose",
    "conv",
    "conv_transpose",
    "transpose_padding",
]

Dense = nn.Dense
BatchNorm = nn.BatchNorm


_PLAIN = contextvars.ContextVar("generative_layers_plain_xla", default=False)
_XLA_KERNEL_GRADIENTS = contextvars.ContextVar("generative_layers_xla_kgrad", default=False)


@contextlib.contextmanager
def plain_xla(enabled: bool = True):
    """Within this context, layers traced use flax's modules on CPU too (the programs plain
    flax gives), e.g. to time the CPU forms against plain XLA in one process. It acts when a
    function is traced: a function jitted and traced before keeps its program."""
    token = _PLAIN.set(enabled)
    try:
        yield
    finally:
        _PLAIN.reset(token)


@contextlib.contextmanager
def xla_kernel_gradients(enabled: bool = True):
    """Within this context, the CPU forms traced take XLA's own kernel gradients (a
    convolution with batch and features swapped) for every convolution and transposed
    convolution, instead of matrix products per tap: the form for programs compiled with
    XLA's own convolutions rather than YNNPACK's
    (`generative.core.cpu_codegen.xla_convolutions_options`), which compute those kernel
    gradients 2–4× faster than YNNPACK does and faster than the products. Every strided
    transposed convolution then takes the mirrored form (its derivatives those of the strided
    convolution it transposes). The values and derivatives are the same functions. It acts
    when a function is traced, like `plain_xla`; `generative.core.train.run` enters it for
    the programs compiled with that option."""
    token = _XLA_KERNEL_GRADIENTS.set(enabled)
    try:
        yield
    finally:
        _XLA_KERNEL_GRADIENTS.reset(token)


def _nonzero(t) -> bool:
    return not isinstance(t, SymbolicZero)


def _sum_tangents(parts, y):
    """The sum of a JVP's tangent parts (zeros like y when every input tangent is zero)."""
    return functools.reduce(jnp.add, parts) if parts else jnp.zeros_like(y)


def _checkpointed(fn):
    """`fn` whose primal-only work (windows of the input) is redone when the tangent map is
    transposed, instead of being kept from the forward pass (k^d windows, each as large as
    the layer's input)."""
    return jax.checkpoint(fn, prevent_cse=False)


def transpose_padding(kernel: int, stride: int, padding) -> tuple[int, int]:
    """The (low, high) padding of the dilated input that `lax.conv_transpose` uses."""
    if isinstance(padding, str):
        if padding == "SAME":
            pad_len = kernel + stride - 2
            low = kernel - 1 if stride > kernel - 1 else math.ceil(pad_len / 2)
        elif padding == "VALID":
            pad_len = kernel + stride - 2 + max(kernel - stride, 0)
            low = kernel - 1
        else:
            raise ValueError(f"unknown padding '{padding}'; valid choices: SAME, VALID, pairs")
        return low, pad_len - low
    low, high = padding
    return int(low), int(high)


def _phases(size: int, kernel: int, stride: int, pads: tuple[int, int]):
    """Per output phase r: (first tap, number of taps, input offset of the first tap, length).

    Output o = s·q + r sees x[q + d] through tap j whenever r + j - pad_low = s·d.
    """
    low, high = pads
    out_len = max(0, (size - 1) * stride + 1 + low + high - kernel + 1)
    phases = []
    for r in range(stride):
        taps = [j for j in range(kernel) if (r + j - low) % stride == 0]
        length = max(0, -(-(out_len - r) // stride))
        if taps:
            phases.append((taps[0], len(taps), (r + taps[0] - low) // stride, length))
        else:
            phases.append((0, 0, 0, length))
    return out_len, phases


def conv_transpose(x, kernel, strides: Sequence[int], padding="SAME", precision=None):
    """`lax.conv_transpose(x, kernel, strides, padding, dimension_numbers=NHWC/HWIO)` in the
    CPU forms of this module (see the module docstring); any backend runs it.

    x: [N, *spatial, C_in]; kernel: [*window, C_in, C_out] (not flipped, as flax's default
    `transpose_kernel=False`); padding: 'SAME', 'VALID' or one (low, high) pair per spatial
    axis (`lax.conv_transpose`'s convention).
    """
    nd = x.ndim - 2
    if not 1 <= nd <= 3:
        raise ValueError(f"conv_transpose supports 1 to 3 spatial axes, got {nd}")
    window = kernel.shape[:nd]
    strides = tuple(int(s) for s in strides)
    if len(strides) != nd:
        raise ValueError(f"strides {strides} must have one entry per spatial axis ({nd})")
    if isinstance(padding, str):
        pads = tuple(transpose_padding(k, s, padding) for k, s in zip(window, strides))
    else:
        pads = tuple(transpose_padding(k, s, p) for k, s, p in zip(window, strides, padding))
    if all(n == 1 or k <= s for n, k, s in zip(x.shape[1:-1], window, strides)):
        return _conv_transpose_blocks(x, kernel, strides, pads, precision)
    if math.prod(window) * kernel.shape[-1] <= kernel.shape[-2]:
        return _conv_transpose_taps(x, kernel, strides, pads, precision)
    if _mirrored(x.shape, kernel.shape, strides):
        return _conv_transpose_mirrored(x, kernel, strides, pads, precision)
    return _conv_transpose(x, kernel, strides, pads, precision)


# A strided transposed convolution with at most MIRRORED_ANY_SIZE_MAX_IN_CHANNELS input
# channels, or at most MIRRORED_MAX_IN_CHANNELS on fewer than STRIDED_PRODUCTS_MIN_POSITIONS
# input positions per image, takes its derivatives as those of the strided convolution it
# transposes (`_conv_transpose_mirrored`): the input gradient is that convolution, the kernel
# gradient XLA's own for it. Measured on a 2-core Intel Xeon (AVX-512), 4×4 stride-2 layers
# at batch 16 and 64, inputs 4×4 to 16×16, each gradient alone, phases form ÷ mirrored
# (`benchmarks/layers.py --tables convt`): 64->32 channels 1.4–2.1× (input gradient) and
# 1.4–2.7× (kernel gradient) faster mirrored; 128->64 0.93–1.3× and 1.3–1.7× below 16×16,
# 1.2× and 0.96–1.3× at 16×16 (the Moving MNIST decoder's 128->64 layer at 16×16, batch 256,
# made the training step 5 % slower mirrored); 256->128 0.78–0.90× and 0.62–1.5×.
# Under `xla_kernel_gradients` (programs compiled with XLA's own convolutions) every strided
# transposed convolution is mirrored: training steps in one process, phases for the wider
# layers ÷ all mirrored (Intel Xeon, 2 cores): SRVP b16 1764 / 1700 ms, Moving MNIST separation
# model b16 1475 / 1375 ms.
MIRRORED_MAX_IN_CHANNELS = 128
MIRRORED_ANY_SIZE_MAX_IN_CHANNELS = 64


def _mirrored(x_shape, kernel_shape, strides) -> bool:
    c_in = kernel_shape[-2]
    if all(s == 1 for s in strides):
        return False
    if _XLA_KERNEL_GRADIENTS.get():  # with XLA's own convolutions: always (see the context)
        return True
    if c_in > MIRRORED_MAX_IN_CHANNELS:
        return False
    few_positions = math.prod(x_shape[1:-1]) < STRIDED_PRODUCTS_MIN_POSITIONS
    return c_in <= MIRRORED_ANY_SIZE_MAX_IN_CHANNELS or few_positions


def _tap_products(xp, k, precision):
    """VALID stride-1 correlation of xp [N, *in, C_in] with k [*window, C_in, C_out] as one
    matrix product per tap (2-D operands), summed."""
    nd = xp.ndim - 2
    window = k.shape[:nd]
    out = [n - w + 1 for n, w in zip(xp.shape[1:-1], window)]
    y = None
    for tap in np.ndindex(*window):
        part = xp[(slice(None), *(slice(t, t + o) for t, o in zip(tap, out)))]
        part = jnp.dot(part.reshape(-1, xp.shape[-1]), k[tap], precision=precision)
        y = part if y is None else y + part
    return y.reshape(xp.shape[0], *out, k.shape[-1])


def _phase_axes(x, kernel, strides, pads):
    nd = x.ndim - 2
    return [_phases(x.shape[1 + i], kernel.shape[i], strides[i], pads[i]) for i in range(nd)]


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4))
def _conv_transpose(x, kernel, strides, pads, precision):
    return _conv_transpose_phases(
        x, kernel, strides, _phase_axes(x, kernel, strides, pads), precision
    )


@functools.partial(_conv_transpose.defjvp, symbolic_zeros=True)
def _conv_transpose_jvp(strides, pads, precision, primals, tangents):
    x, kernel = primals
    dx, dk = tangents
    axes = _phase_axes(x, kernel, strides, pads)
    y = _conv_transpose(x, kernel, strides, pads, precision)
    parts = []
    if _nonzero(dx):  # the phases of dx: transposed, stride-1 convolutions
        parts.append(_conv_transpose_phases(dx, kernel, strides, axes, precision))
    if _nonzero(dk):  # per-tap products: transposed, the kernel gradient's products

        def kernel_tangent(x, dk):
            op = functools.partial(_tap_products, precision=precision)
            if _XLA_KERNEL_GRADIENTS.get():
                op = None  # each phase's XLA convolution: transposed, XLA's kernel gradient
            return _conv_transpose_phases(x, dk, strides, axes, precision, op=op)

        parts.append(_checkpointed(kernel_tangent)(x, dk))
    return y, _sum_tangents(parts, y)


def _mirror_geometry(x_shape, kernel_shape, strides, pads):
    """(output spatial lengths, padding of the strided convolution whose transpose in its
    input is the transposed convolution): conv_transpose(x, k) = conv(·, W)ᵀ x with
    W = k flipped in space, C_in and C_out swapped."""
    nd = len(strides)
    window = kernel_shape[:nd]
    out = [
        (n - 1) * s + 1 + lo + hi - k + 1
        for n, k, s, (lo, hi) in zip(x_shape[1:-1], window, strides, pads)
    ]
    return out, tuple((k - 1 - lo, k - 1 - hi) for k, (lo, hi) in zip(window, pads))


def _mirror_kernel(kernel):
    nd = kernel.ndim - 2
    return jnp.swapaxes(kernel[(slice(None, None, -1),) * nd], -1, -2)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4))
def _conv_transpose_mirrored(x, kernel, strides, pads, precision):
    return _conv_transpose(x, kernel, strides, pads, precision)


@functools.partial(_conv_transpose_mirrored.defjvp, symbolic_zeros=True)
def _conv_transpose_mirrored_jvp(strides, pads, precision, primals, tangents):
    """The value in phases (`_conv_transpose`); tangents written as transposes (in u) of the
    strided convolution c(u, W) = conv(u, W, strides): transposed again by reverse mode, the
    input gradient is c(g, W) and the kernel gradient XLA's kernel gradient of c."""
    x, kernel = primals
    dx, dk = tangents
    out, conv_pads = _mirror_geometry(x.shape, kernel.shape, strides, pads)
    y = _conv_transpose(x, kernel, strides, pads, precision)
    u = jax.ShapeDtypeStruct((x.shape[0], *out, kernel.shape[-1]), y.dtype)

    def c(u, w):
        dn = _dimension_numbers(u, w)
        return lax.conv_general_dilated(
            u, w, strides, conv_pads, dimension_numbers=dn, precision=precision
        )

    parts = []
    if _nonzero(dx):
        w = _mirror_kernel(kernel)
        parts.append(jax.linear_transpose(lambda u: c(u, w), u)(dx)[0])
    if _nonzero(dk):

        def kernel_gradient(g):  # ∂<x, c(g, W(k))>/∂k: linear in g
            return jax.vjp(lambda k: c(g, _mirror_kernel(k)), kernel)[1](x)[0]

        parts.append(jax.linear_transpose(kernel_gradient, u)(dk)[0])
    return y, _sum_tangents(parts, y)


def _conv_transpose_blocks(x, kernel, strides, pads, precision):
    """Windows that do not overlap in the output (per axis one input, or kernel <= stride,
    e.g. a decoder's first layer 1×1 -> 4×4): every output takes at most one tap, so the
    layer is one matrix product z = x @ K[C_in, taps · C_out] whose tap blocks, laid side by
    side (depth to space), are the output up to a shift. Input o = s·i + low − j receives
    x[i] K[j]; with j' = k − 1 − j the block of input i holds taps j' at s·i + j'. A phase
    convolution would multiply mostly padding (16× the work for 1×1 -> 4×4). Differentiated
    by JAX (pads, a transpose and two products)."""
    nd = x.ndim - 2
    window = kernel.shape[:nd]
    c_out = kernel.shape[-1]
    flip = (slice(None, None, -1),) * nd
    kr = jnp.moveaxis(kernel[flip], -2, 0).reshape(kernel.shape[-2], -1)  # [C_in, taps·C_out]
    z = jnp.dot(x.reshape(-1, x.shape[-1]), kr, precision=precision)
    z = z.reshape(*x.shape[:-1], *window, c_out)  # [N, *in, *window, C_out]
    widths = [max(s, k) if n == 1 else s for n, k, s in zip(x.shape[1:-1], window, strides)]
    zero = jnp.zeros((), z.dtype)
    config = [(0, 0, 0)] * (nd + 1) + [(0, w - k, 0) for w, k in zip(widths, window)] + [(0, 0, 0)]
    z = lax.pad(z, zero, config)
    z = _from_phases(z, nd)  # [N, *(in · width), C_out]
    config = [(0, 0, 0)]
    for i, (n, k, s, (lo, hi)) in enumerate(zip(x.shape[1:-1], window, strides, pads)):
        out_len = _phases(n, k, s, (lo, hi))[0]
        shift = lo - k + 1  # output o reads block position o − shift
        config.append((shift, out_len - shift - z.shape[1 + i], 0))
    config.append((0, 0, 0))
    return lax.pad(z, zero, config)


def _s2d_kernel(kernel, strides, flip_phase: bool):
    """Kernel [*window, C_in, C_out] padded to A·s taps per axis (A = ceil(k/s)) and split as
    tap j = s·a + b -> (a, b) -> [*A, *s, C_in, C_out]; with flip_phase the phase is
    ρ = s − 1 − b (the transposed convolution's)."""
    nd = len(strides)
    window = kernel.shape[:nd]
    big = [-(-k // s) for k, s in zip(window, strides)]
    kp = jnp.pad(kernel, [(0, a * s - k) for a, s, k in zip(big, strides, window)] + [(0, 0)] * 2)
    kp = kp.reshape(*(d for a, s in zip(big, strides) for d in (a, s)), *kernel.shape[-2:])
    kp = kp.transpose(*range(0, 2 * nd, 2), *range(1, 2 * nd, 2), 2 * nd, 2 * nd + 1)
    if flip_phase:
        kp = kp[(slice(None),) * nd + (slice(None, None, -1),) * nd]
    return kp, big


def _to_phases(x, strides):
    """[N, *(U·s), C] -> [N, *U, *s, C] (space to depth)."""
    nd = len(strides)
    u = [n // s for n, s in zip(x.shape[1:-1], strides)]
    x = x.reshape(x.shape[0], *(d for a, s in zip(u, strides) for d in (a, s)), x.shape[-1])
    return x.transpose(0, *range(1, 2 * nd, 2), *range(2, 2 * nd + 1, 2), 2 * nd + 1)


def _from_phases(x, nd):
    """[N, *U, *s, C] -> [N, *(U·s), C] (depth to space)."""
    perm = [0] + [a for i in range(nd) for a in (1 + i, 1 + nd + i)] + [1 + 2 * nd]
    return x.transpose(perm).reshape(
        x.shape[0], *(x.shape[1 + i] * x.shape[1 + nd + i] for i in range(nd)), x.shape[-1]
    )


def _conv_transpose_taps(x, kernel, strides, pads, precision):
    """Few output channels (taps · C_out <= C_in, e.g. a decoder's last layer): one matrix
    product z = x @ K[C_in, taps · C_out] at full width, then the taps are summed into the
    output in space-to-depth form (tap j = s·a + s − 1 − ρ of input i lands in output phase ρ
    of block i − a, up to an offset), so every move is of contiguous s·C_out vectors. The
    convolution forms, one per phase, each run a C_out-wide product. Differentiated by JAX
    (slices and two products)."""
    nd = x.ndim - 2
    kp, big = _s2d_kernel(kernel, strides, flip_phase=True)  # [*A, *s, C_in, C_out]
    kr = jnp.moveaxis(kp, -2, 0).reshape(kernel.shape[-2], -1)
    # 2-D operands: a product contracting several axes (its transpose, the kernel gradient,
    # would contract N and the spatial axes) takes a slow path on XLA's CPU backend.
    z = jnp.dot(x.reshape(-1, x.shape[-1]), kr, precision=precision)
    z = z.reshape(*x.shape[:-1], *kp.shape[: 2 * nd], kernel.shape[-1])
    zero = jnp.zeros((), z.dtype)
    out = None
    for a in np.ndindex(*big):
        plane = z[(slice(None),) * (nd + 1) + a]  # [N, *L, *s, C_out]
        config = [(0, 0, 0)]
        config += [(m - 1 - ai, ai, 0) for m, ai in zip(big, a)]
        config += [(0, 0, 0)] * (nd + 1)
        plane = lax.pad(plane, zero, config)
        out = plane if out is None else out + plane
    out = _from_phases(out, nd)  # output o sits at o + P, P = s·A − 1 − pad_low
    config = [(0, 0, 0)]
    for i, (n, k, s, (lo, hi), a) in enumerate(
        zip(x.shape[1:-1], kernel.shape, strides, pads, big)
    ):
        p = s * a - 1 - lo
        out_len = _phases(n, k, s, (lo, hi))[0]
        config.append((-p, out_len - (out.shape[1 + i] - p), 0))
    config.append((0, 0, 0))
    return lax.pad(out, zero, config)


def _dimension_numbers(x, kernel):
    spatial = "HWD"[: x.ndim - 2]
    return lax.conv_dimension_numbers(
        x.shape, kernel.shape, ("N" + spatial + "C", spatial + "IO", "N" + spatial + "C")
    )


def _conv_transpose_phases(x, kernel, strides, axes, precision, op=None):
    """One stride-1 VALID correlation per output phase, interleaved. `op(xp, k)` computes
    each phase's correlation (default: XLA's convolution)."""
    nd = x.ndim - 2
    dn = _dimension_numbers(x, kernel)
    out_lens = [a[0] for a in axes]
    full = [-(-n // s) for n, s in zip(out_lens, strides)]  # phase length before cropping
    c_out = kernel.shape[-1]
    phases = []  # per phase: per-axis (first tap, taps, offset, length), edges or None
    for phase in np.ndindex(*strides):
        per_axis = [axes[i][1][r] for i, r in enumerate(phase)]
        edges = None
        if all(n for _, n, _, _ in per_axis):
            # x'[i] = x[i + d0] over the length+n-1 inputs the VALID window needs: x cropped
            # where that range ends inside x, zero-padded where it reaches past x.
            edges = [
                (-d0, length + n - 1 + d0 - x.shape[1 + i])
                for i, (_, n, d0, length) in enumerate(per_axis)
            ]
        phases.append((per_axis, edges))
    used = [e for _, e in phases if e is not None]
    if op is not None and used:
        # One zero-padded x for every phase, each phase's window a slice of it: the taps'
        # windows (slices of slices) then coincide across phases (9 distinct ones for 4×4
        # stride 2 instead of 16) and XLA materialises each once. Training steps in one
        # process, per-phase padding ÷ shared (Intel Xeon, 2 cores): Moving MNIST separation
        # model b16 1.43 / 1.40 s, SRVP b16 2.19 / 2.15 s.
        pad_all = [
            (max(0, *(e[i][0] for e in used)), max(0, *(e[i][1] for e in used))) for i in range(nd)
        ]
        config = [(0, 0, 0)] + [(lo, hi, 0) for lo, hi in pad_all] + [(0, 0, 0)]
        x_padded = lax.pad(x, jnp.zeros((), x.dtype), config)
    blocks = []
    for per_axis, edges in phases:
        if edges is None:
            out = jnp.zeros((x.shape[0], *full, c_out), jnp.result_type(x, kernel))
        else:
            index = tuple(
                slice(j0, j0 + (n - 1) * s + 1, s) for (j0, n, _, _), s in zip(per_axis, strides)
            )
            k = kernel[index]
            if op is None:
                # The zeros as the convolution's own padding: its input gradient, a
                # convolution too, then covers x's positions only (the padded input's would
                # cost (length+1)^d / length^d as much for 2-tap phases).
                crop = [(0, 0, 0)] + [(min(lo, 0), min(hi, 0), 0) for lo, hi in edges]
                xc = lax.pad(x, jnp.zeros((), x.dtype), crop + [(0, 0, 0)])
                out = lax.conv_general_dilated(
                    xc,
                    k,
                    (1,) * nd,
                    [(max(lo, 0), max(hi, 0)) for lo, hi in edges],
                    dimension_numbers=dn,
                    precision=precision,
                )
            else:
                window = tuple(
                    slice(a - lo, a - lo + x.shape[1 + i] + lo + hi)
                    for i, ((lo, hi), (a, _)) in enumerate(zip(edges, pad_all))
                )
                out = op(x_padded[(slice(None), *window)], k)
            grow = [(0, f - ln) for f, (_, _, _, ln) in zip(full, per_axis)]
            if any(g for _, g in grow):
                out = jnp.pad(out, [(0, 0), *grow, (0, 0)])
        blocks.append(out)
    # blocks in phase order (r_1, ..., r_d) -> [N, full_1, s_1, ..., full_d, s_d, C]
    stacked = jnp.stack(blocks, axis=-2).reshape(x.shape[0], *full, *strides, c_out)
    perm = [0] + [a for i in range(nd) for a in (1 + i, 1 + nd + i)] + [1 + 2 * nd]
    out = stacked.transpose(perm).reshape(
        x.shape[0], *(f * s for f, s in zip(full, strides)), c_out
    )
    return out[(slice(None), *(slice(0, n) for n in out_lens))]


def conv(x, kernel, strides: Sequence[int], padding="SAME", precision=None, im2col=False):
    """`lax.conv_general_dilated(x, kernel, strides, padding)` in NHWC/HWIO in the CPU forms
    of this module (see the module docstring); any backend runs it. ``im2col``: always one
    product on the patches (`_conv_im2col`), the form for layers vmapped over per-member
    kernels (see `Conv`)."""
    nd = x.ndim - 2
    window = kernel.shape[:nd]
    strides = tuple(int(s) for s in strides)
    if isinstance(padding, str):
        pads = lax.padtype_to_pads(x.shape[1 : 1 + nd], window, strides, padding)
    else:
        pads = padding
    pads = tuple((int(a), int(b)) for a, b in pads)
    q = [
        (n + lo + hi - k) // s + 1
        for n, k, s, (lo, hi) in zip(x.shape[1:-1], window, strides, pads)
    ]
    if im2col:
        return _conv_im2col(x, kernel, strides, pads, q, precision)
    if min(q) > 0 and all(qi == 1 or k <= s for qi, k, s in zip(q, window, strides)):
        return _conv_patches(x, kernel, strides, pads, q, precision)
    if math.prod(window) * kernel.shape[-2] <= kernel.shape[-1]:
        return _conv_im2col(x, kernel, strides, pads, q, precision)
    return _conv(x, kernel, strides, pads, precision)


# A strided convolution's kernel gradient is computed as products on the space-to-depth input
# when each image has at least this many output positions, else by XLA's own convolution form.
# Measured on a 2-core AMD EPYC (Zen 4), 4×4 stride-2 layers at batch 240
# (`benchmarks/layers.py`, kernel gradient alone): products against XLA 219 vs 288 ms at
# 16×16 outputs (64->128), 152 vs 125 ms at 8×8 (128->256), 128 vs 87 ms at 4×4 (256->512).
STRIDED_PRODUCTS_MIN_POSITIONS = 256

# A stride-1 convolution's kernel gradient is computed as per-tap products when it has at least
# this many output channels, else by XLA's own convolution form: with few output channels
# each tap's product xᵀ · g is a thin matrix product. Measured on a 2-core Intel Xeon, 3×3
# layers, kernel gradient alone (`benchmarks/layers.py --tables kgrad`), products against XLA:
# 64->1 @64 batch 16 24.1 vs 6.8 ms, 64->16 47.3 vs 26.8, 64->32 47.5 vs 33.9, 32->32 25.0 vs
# 18.6; 32->64 26.6 vs 38.9, 64->40 @32 13.6 vs 23.0, 48->48 @64 38.7 vs 61.3.
PRODUCTS_MIN_OUT_CHANNELS = 33


def _s2d_input(x, strides, pads, q, big):
    """The padded input in space-to-depth form [N, *(Q + A − 1), s^d · C]: the strided
    convolution is the stride-1 VALID correlation of it with the kernel in the same form."""
    config = [(0, 0, 0)]
    for n, s, (lo, _), qi, a in zip(x.shape[1:-1], strides, pads, q, big):
        config.append((lo, s * (qi + a - 1) - n - lo, 0))
    config.append((0, 0, 0))
    xs = _to_phases(lax.pad(x, jnp.zeros((), x.dtype), config), strides)
    return xs.reshape(*xs.shape[: 1 + len(strides)], -1)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4))
def _conv(x, kernel, strides, pads, precision):
    return lax.conv_general_dilated(
        x,
        kernel,
        strides,
        pads,
        dimension_numbers=_dimension_numbers(x, kernel),
        precision=precision,
    )


@functools.partial(_conv.defjvp, symbolic_zeros=True)
def _conv_jvp(strides, pads, precision, primals, tangents):
    x, kernel = primals
    dx, dk = tangents
    nd = x.ndim - 2
    y = _conv(x, kernel, strides, pads, precision)
    parts = []
    q = y.shape[1:-1]
    stride_1 = all(s == 1 for s in strides)
    if not stride_1:
        big = [-(-k // s) for k, s in zip(kernel.shape[:nd], strides)]

        def s2d_kernel(k):
            kp, _ = _s2d_kernel(k, strides, flip_phase=False)  # [*A, *s, C_in, C_out]
            return kp.reshape(*big, -1, k.shape[-1])

    if _nonzero(dx) and stride_1:  # transposed: a stride-1 convolution
        parts.append(_conv.fun(dx, kernel, strides, pads, precision))
    elif _nonzero(dx):  # transposed: a stride-1 convolution on the space-to-depth form
        xs, ks = _s2d_input(dx, strides, pads, q, big), s2d_kernel(kernel)
        parts.append(_conv.fun(xs, ks, (1,) * nd, ((0, 0),) * nd, precision))
    few_positions = not stride_1 and math.prod(q) < STRIDED_PRODUCTS_MIN_POSITIONS
    few_outputs = stride_1 and kernel.shape[-1] < PRODUCTS_MIN_OUT_CHANNELS
    if _nonzero(dk) and (few_positions or few_outputs or _XLA_KERNEL_GRADIENTS.get()):
        # XLA's own kernel gradient is the faster here (see the constants)
        parts.append(_conv.fun(x, dk, strides, pads, precision))
    elif _nonzero(dk):  # products per tap / block shift: transposed, the kernel gradient

        def kernel_tangent(x, dk):
            if stride_1:
                config = [(0, 0, 0)] + [(lo, hi, 0) for lo, hi in pads] + [(0, 0, 0)]
                return _tap_products(lax.pad(x, jnp.zeros((), x.dtype), config), dk, precision)
            return _tap_products(_s2d_input(x, strides, pads, q, big), s2d_kernel(dk), precision)

        parts.append(_checkpointed(kernel_tangent)(x, dk))
    return y, _sum_tangents(parts, y)


def _conv_patches(x, kernel, strides, pads, q, precision):
    """Windows that do not overlap (per axis one output, or kernel <= stride: an encoder's
    last 4×4 -> 1×1 layer, a patch embedding): the patches are the padded input cut into
    blocks (a reshape, a slice and a transpose, no copy per tap), times K[taps · C_in, C_out].
    XLA would compute the input gradient as a convolution over mostly padding. Differentiated
    by JAX."""
    nd = x.ndim - 2
    window = kernel.shape[:nd]
    widths = [k if qi == 1 else s for qi, k, s in zip(q, window, strides)]
    config = [(0, 0, 0)]
    for n, (lo, _), qi, w in zip(x.shape[1:-1], pads, q, widths):
        config.append((lo, qi * w - n - lo, 0))
    config.append((0, 0, 0))
    xp = _to_phases(lax.pad(x, jnp.zeros((), x.dtype), config), widths)  # [N, *Q, *w, C]
    xp = xp[(slice(None),) * (nd + 1) + tuple(slice(0, k) for k in window)]
    patches = xp.reshape(-1, math.prod(window) * x.shape[-1])
    out = jnp.dot(patches, kernel.reshape(-1, kernel.shape[-1]), precision=precision)
    return out.reshape(x.shape[0], *q, kernel.shape[-1])


def _conv_im2col(x, kernel, strides, pads, q, precision):
    """q: the output length per spatial axis. Few input channels (taps · C_in <= C_out, e.g. an encoder's first layer on frames):
    patches [N, *Q, taps · C_in] (no larger than the output) times K[taps · C_in, C_out], one
    full-width product instead of a convolution reading C_in-wide vectors. The patches are
    shifted slices of the space-to-depth input (tap j = s·a + ρ reads block q + a, phase ρ),
    so every move is of contiguous s·C_in vectors. Differentiated by JAX: the kernel gradient
    is patchesᵀ · g, one product."""
    kp, big = _s2d_kernel(kernel, strides, flip_phase=False)  # [*A, *s, C_in, C_out]
    xs = _s2d_input(x, strides, pads, q, big)  # [N, *(Q + A − 1), s^d · C]
    patches = jnp.concatenate(
        [
            xs[(slice(None), *(slice(ai, ai + qi) for ai, qi in zip(a, q)))]
            for a in np.ndindex(*big)
        ],
        axis=-1,
    )
    out = jnp.dot(
        patches.reshape(-1, patches.shape[-1]),
        kp.reshape(-1, kernel.shape[-1]),
        precision=precision,
    )  # 2-D, as in `_conv_transpose_taps`
    return out.reshape(*patches.shape[:-1], kernel.shape[-1])


def _window_strides(kernel_size, strides):
    window = (kernel_size,) if isinstance(kernel_size, int) else tuple(kernel_size)
    if strides is None:
        strides = 1
    strides = (strides,) * len(window) if isinstance(strides, int) else tuple(strides)
    return window, strides


def _pairs(padding, nd):
    """flax's padding forms: a string, an int, or one int / (low, high) per spatial axis."""
    if isinstance(padding, str):
        if padding not in ("SAME", "VALID"):
            raise ValueError(f"unknown padding {padding!r}; valid choices: 'SAME', 'VALID', pairs")
        return padding
    if isinstance(padding, int):
        return [(padding, padding)] * nd
    return [(p, p) if isinstance(p, int) else tuple(p) for p in padding]


class _ConvLayer(nn.Module):
    """Fields, parameters and batching shared by `Conv` and `ConvTranspose` (flax's fields
    and names: kernel `[*window, C_in, C_out]`, 'kernel' and 'bias'). `_flax()` is flax's
    module class, `_cpu` the CPU operation."""

    features: int
    kernel_size: Sequence[int]
    strides: Sequence[int] | None = None
    padding: Any = "SAME"
    use_bias: bool = True
    kernel_init: Any = nn.initializers.lecun_normal()
    bias_init: Any = nn.initializers.zeros_init()
    param_dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x, shared=None):
        """x [*batch, *spatial, C]. `shared` [*groups, *spatial, C_s] (optional): more input
        channels, the same for each run of N/G consecutive rows of x (N, G: the flattened
        batch and group counts; e.g. skip features repeated over a video's frames). The
        result is the layer on `concat([x, repeat(shared, N/G)], -1)` (same kernel
        [*window, C + C_s, features]), and by linearity the shared channels' part is
        computed G times rather than N."""
        window, strides = _window_strides(self.kernel_size, self.strides)
        nd = len(window)
        if x.ndim < nd + 2:
            raise ValueError(
                f"{type(self).__name__} with a {nd}-D window needs inputs [*batch, *spatial, C] "
                f"of at least {nd + 2} axes, got shape {x.shape}"
            )
        batch = x.shape[: x.ndim - nd - 1]
        x = x.reshape((-1,) + x.shape[x.ndim - nd - 1 :])
        c_in = x.shape[-1]
        if shared is not None:
            shared = shared.reshape((-1,) + shared.shape[shared.ndim - nd - 1 :])
            if shared.shape[1:-1] != x.shape[1:-1] or x.shape[0] % shared.shape[0]:
                raise ValueError(
                    f"shared input {shared.shape} must match x {x.shape} in its spatial axes "
                    "and divide its batch"
                )
            c_in += shared.shape[-1]
        pads = _pairs(self.padding, nd)
        params = {
            "kernel": self.param(
                "kernel", self.kernel_init, window + (c_in, self.features), self.param_dtype
            )
        }
        if self.use_bias:
            params["bias"] = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
        flax_layer = functools.partial(
            self._flax(),
            self.features,
            window,
            strides,
            self.padding,
            precision=self.precision,
            parent=None,
        )
        c = x.shape[-1]

        def plain(x, shared, params):  # flax's module (GPU, TPU)
            if shared is None:
                return flax_layer(use_bias=self.use_bias).apply({"params": params}, x)
            own = dict(params, kernel=params["kernel"][..., :c, :])
            y = flax_layer(use_bias=self.use_bias).apply({"params": own}, x)
            ks = {"kernel": params["kernel"][..., c:, :]}
            return _add_per_group(y, flax_layer(use_bias=False).apply({"params": ks}, shared))

        def cpu(x, shared, params):
            x, kernel, bias = promote_dtype(x, params["kernel"], params.get("bias"))
            y = self._cpu(x, kernel[..., :c, :], strides, pads)
            if shared is not None:
                shared = shared.astype(x.dtype)
                y = _add_per_group(y, self._cpu(shared, kernel[..., c:, :], strides, pads))
            if bias is not None:
                y = y + bias.reshape((1,) * (y.ndim - 1) + (-1,))
            return y

        if _PLAIN.get():
            y = plain(x, shared, params)
        else:
            y = lax.platform_dependent(x, shared, params, cpu=cpu, default=plain)
        return y.reshape(batch + y.shape[1:])


def _add_per_group(y, ys):
    """y [N, ...] + ys [G, ...] repeated over each run of N/G consecutive rows."""
    g = ys.shape[0]
    return (y.reshape(g, -1, *y.shape[1:]) + ys[:, None]).reshape(y.shape)


class Conv(_ConvLayer):
    """`flax.linen.Conv` (no dilation or groups): flax's module on GPU/TPU, `conv` on CPU.
    Inputs may have several leading batch axes.

    ``im2col=True``: on CPU always one product on the patches [N, *Q, taps · C_in]. Small
    feature maps inside a vmapped and scanned solver are where this wins: a network vmapped
    over per-environment kernels (XLA lowers the batched convolution to a grouped one, whose
    CPU gradient is slow) or applied to every environment's state (LEADS on Gray–Scott,
    32×32: training steps 2.6× faster at 16 channels, 7× at 64,
    `benchmarks/environments_bench.py --gs-forms`). GPU/TPU programs are flax's either way."""

    im2col: bool = False

    def _flax(self):
        return nn.Conv

    def _cpu(self, x, kernel, strides, pads):
        return conv(x, kernel, strides, pads, self.precision, im2col=self.im2col)


class ConvTranspose(_ConvLayer):
    """`flax.linen.ConvTranspose` (`transpose_kernel=False`, no dilation): flax's module on
    GPU/TPU, `conv_transpose` on CPU. Inputs may have several leading batch axes."""

    def _flax(self):
        return nn.ConvTranspose

    def _cpu(self, x, kernel, strides, pads):
        return conv_transpose(x, kernel, strides, pads, self.precision)


class GroupNorm(nn.Module):
    """`flax.linen.GroupNorm` (its fields, parameters 'scale' and 'bias', and results): flax's
    module on GPU/TPU; on CPU the statistics are per-channel sums over the spatial axes, then
    per-group sums of those (see the module docstring). Inputs [N, *spatial, C], statistics per
    example and group as flax computes them by default; a `reduction_axes`, `axis_name` or
    `mask` runs flax's module on every platform."""

    num_groups: int | None = 32
    group_size: int | None = None
    epsilon: float = 1e-6
    dtype: Any = None
    param_dtype: Any = jnp.float32
    use_bias: bool = True
    use_scale: bool = True
    bias_init: Any = nn.initializers.zeros
    scale_init: Any = nn.initializers.ones
    reduction_axes: Any = None
    axis_name: str | None = None
    axis_index_groups: Any = None
    use_fast_variance: bool = True
    force_float32_reductions: bool = True

    @nn.compact
    def __call__(self, x, *, mask=None):
        c = x.shape[-1]
        groups = _group_count(c, self.num_groups, self.group_size)
        params = {}
        if self.use_scale:
            params["scale"] = self.param("scale", self.scale_init, (c,), self.param_dtype)
        if self.use_bias:
            params["bias"] = self.param("bias", self.bias_init, (c,), self.param_dtype)
        flax_module = nn.GroupNorm(**{f: getattr(self, f) for f in _GROUP_NORM_FIELDS}, parent=None)

        def plain(x, params):  # flax's module (GPU, TPU)
            return flax_module.apply({"params": params}, x, mask=mask)

        special = self.reduction_axes is not None or self.axis_name is not None
        if _PLAIN.get() or special or mask is not None or x.ndim < 2:
            return plain(x, params)
        cpu = functools.partial(
            _group_norm,
            groups=groups,
            epsilon=self.epsilon,
            dtype=self.dtype,
            fast_variance=self.use_fast_variance,
            float32_stats=self.force_float32_reductions,
        )
        return lax.platform_dependent(x, params, cpu=cpu, default=plain)


_GROUP_NORM_FIELDS = (
    "num_groups",
    "group_size",
    "epsilon",
    "dtype",
    "param_dtype",
    "use_bias",
    "use_scale",
    "bias_init",
    "scale_init",
    "reduction_axes",
    "axis_name",
    "axis_index_groups",
    "use_fast_variance",
    "force_float32_reductions",
)


def _group_count(channels: int, num_groups, group_size) -> int:
    """flax's rule: exactly one of num_groups / group_size, dividing the channels."""
    if (num_groups is None) == (group_size is None):
        raise ValueError(
            "GroupNorm needs exactly one of num_groups and group_size "
            "(pass num_groups=None with a group_size)"
        )
    if group_size is not None:
        if channels % group_size:
            raise ValueError(f"{channels} channels are not a multiple of group_size {group_size}")
        return channels // group_size
    if num_groups <= 0 or channels % num_groups:
        raise ValueError(f"num_groups {num_groups} does not divide the {channels} channels")
    return num_groups


def _group_norm(x, params, *, groups, epsilon, dtype, fast_variance, float32_stats):
    """flax's group normalisation of x [N, *spatial, C] (statistics over the spatial axes and
    each group's channels, per example) with sums over the spatial axes first."""
    stat_dtype = dtype if dtype is not None else jnp.result_type(x)
    if float32_stats:
        stat_dtype = jnp.promote_types(stat_dtype, jnp.float32)
    xs = x.astype(stat_dtype)
    n, c = x.shape[0], x.shape[-1]
    spatial = tuple(range(1, x.ndim - 1))
    count = math.prod(x.shape[1:-1]) * (c // groups)

    def group_mean(per_channel):  # [N, C] sums over the spatial axes -> [N, C] group means
        g = per_channel.reshape(n, groups, c // groups).sum(-1) / count
        return jnp.repeat(g, c // groups, axis=-1)

    def expand(a):  # [N, C] -> [N, 1, ..., 1, C]
        return a.reshape((n,) + (1,) * len(spatial) + (c,))

    mean = group_mean(jnp.sum(xs, axis=spatial))
    if fast_variance:
        var = jnp.maximum(0.0, group_mean(jnp.sum(_abs_sq(xs), axis=spatial)) - _abs_sq(mean))
    else:
        var = group_mean(jnp.sum(_abs_sq(xs - expand(mean)), axis=spatial))
    mul = lax.rsqrt(var + epsilon)
    args = [x]
    if "scale" in params:
        mul = mul * params["scale"][None, :]
        args.append(params["scale"])
    y = (x - expand(mean)) * expand(mul)
    if "bias" in params:
        y = y + params["bias"].reshape((1,) * (x.ndim - 1) + (c,))
        args.append(params["bias"])
    return jnp.asarray(y, canonicalize_dtype(*args, dtype=dtype))


def _abs_sq(x):
    return lax.square(lax.real(x)) + lax.square(lax.imag(x)) if jnp.iscomplexobj(x) else x * x
