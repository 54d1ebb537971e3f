"""generative.layers (CPU forms) against flax.linen (plain XLA) on this host, same run.

    .venv/bin/python benchmarks/layers.py [--batch 240] [--repeats 5] [--tables layers,loops]
        [--json benchmarks/results/layers.json]
    .venv/bin/python benchmarks/layers.py --tables norm,convt --repeats 15
        --json benchmarks/results/layers_norm_convt.json
    .venv/bin/python benchmarks/layers.py --tables kgrad --repeats 7
        --json benchmarks/results/layers_kgrad.json

`layers`: each row is one layer at the SRVP / physics shapes (batch 240 = 16 videos × 15
frames), a jitted value-and-gradient (w.r.t. parameters and input) of a sum of squares of its
output, flax's module and ours timed in turn (`_common.alternating`, median of `repeats`), and
the ratio flax / ours. `loops`: the same for a 3×3 convolution evaluated inside a 10-step
`lax.scan` (an ODE vector field, a scanned residual block). Both sides compute the same
function (`tests/core/test_layers.py`). The CPU model is printed with the figures.

`norm`: `GroupNorm` (16 groups) at the shapes of the conv VAE (batch 64) and of the physics
separation models, value and gradient as above: flax's module, ours, and PyTorch's
`nn.GroupNorm`.

`kgrad`: the kernel gradient alone of 3×3 stride-1 convolutions (ours, flax's, PyTorch's), with
the rate of one tap's matrix product xᵀ · g as the NHWC layout gives it (TN: both operands
rows-major) and with x stored transposed beforehand (NN).

`convt`: strided 4×4 transposed convolutions, the input gradient and the kernel gradient each
alone, in the phases form and in the mirrored form (both forced, whatever `generative.layers`'
rule picks), over batch, input size and channels; the ratio phases / mirrored (> 1: mirrored
faster).

With PyTorch installed, the `layers` table also times the same layer in PyTorch
(`torch.nn.Conv2d` / `ConvTranspose2d`, NCHW, `--torch-threads`) in the same rotation, and
prints each side's rate in GFLOP/s (the layer's multiply-adds, counted without padding: 2 per
multiply-add, three products for value and gradient) next to the host's float32
matrix-product rate measured in the same run (`_common.jax_matmul_rate`): a side at that
rate cannot be beaten without fewer operations.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import statistics
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    SETTLE_S,
    alternating,
    configure_host,
    cpu_model,
    jax_matmul_rate,
    torch_matmul_rate,
)

from generative import layers  # noqa: E402

# name, layer (from a module providing Conv / ConvTranspose / ...), input shape without batch
CASES = [
    ("conv 4x4/2 1->64 @64", lambda m: m.Conv(64, (4, 4), 2, ((1, 1), (1, 1))), (64, 64, 1)),
    ("conv 4x4/2 64->128 @32", lambda m: m.Conv(128, (4, 4), 2, ((1, 1), (1, 1))), (32, 32, 64)),
    ("conv 4x4/2 128->256 @16", lambda m: m.Conv(256, (4, 4), 2, ((1, 1), (1, 1))), (16, 16, 128)),
    ("conv 4x4/2 256->512 @8", lambda m: m.Conv(512, (4, 4), 2, ((1, 1), (1, 1))), (8, 8, 256)),
    ("conv 4x4 valid 512->128 @4 (to 1x1)", lambda m: m.Conv(128, (4, 4), 1, "VALID"), (4, 4, 512)),
    ("conv 3x3/1 64->64 @32", lambda m: m.Conv(64, (3, 3), 1, ((1, 1), (1, 1))), (32, 32, 64)),
    (
        "convT 4x4 valid 138->512 @1 (to 4x4)",
        lambda m: m.ConvTranspose(512, (4, 4), padding="VALID"),
        (1, 1, 138),
    ),
    ("convT 4x4/2 512->256 @4", lambda m: m.ConvTranspose(256, (4, 4), (2, 2)), (4, 4, 512)),
    ("convT 4x4/2 256->128 @8", lambda m: m.ConvTranspose(128, (4, 4), (2, 2)), (8, 8, 256)),
    ("convT 4x4/2 128->64 @16", lambda m: m.ConvTranspose(64, (4, 4), (2, 2)), (16, 16, 128)),
    ("convT 4x4/2 64->1 @32", lambda m: m.ConvTranspose(1, (4, 4), (2, 2)), (32, 32, 64)),
]
NORM_CASES = [(64, 16, 16, 32), (64, 8, 8, 64), (64, 4, 4, 128), (240, 16, 16, 32)]
CONVT_CASES = [
    (n, h, c_in, c_out)
    for n in (64, 16)
    for h in (4, 8, 16)
    for c_in, c_out in ((64, 32), (128, 64), (256, 128))
]
# batch, size, C_in, C_out of the 3×3 stride-1 SAME convolutions of the `kgrad` table
KGRAD_CASES = [
    (16, 64, 64, 64),
    (16, 32, 128, 128),
    (16, 16, 256, 256),
    (16, 32, 64, 40),
    (64, 64, 32, 32),
    (16, 64, 64, 1),
]
LOOP_STEPS = 10
LOOP_CASES = [((16, 16, 16, 64), 64), ((16, 16, 16, 128), 128), ((16, 32, 32, 64), 64)]


def _value_and_grad(module, x, scan_steps=0):
    params = module.init(jax.random.PRNGKey(0), x)

    def loss(p, x):
        if scan_steps:
            body = lambda h, _: (h + jnp.tanh(module.apply(p, h)), None)  # noqa: E731
            x, _ = jax.lax.scan(body, x, None, length=scan_steps)
            return (x**2).sum()
        return (module.apply(p, x) ** 2).sum()

    fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    return lambda: jax.block_until_ready(fn(params, x))


def _torch_layer(torch, module, c_in: int):
    """The PyTorch layer of one of `CASES`' flax modules (same window, stride, padding)."""
    k, stride = module.kernel_size[0], module.strides or 1
    stride = stride if isinstance(stride, int) else stride[0]
    if isinstance(module, nn.ConvTranspose):
        pad = 0 if module.padding == "VALID" else (k - stride) // 2  # flax SAME: out = s · in
        return torch.nn.ConvTranspose2d(c_in, module.features, k, stride, pad)
    pad = 0 if module.padding == "VALID" else module.padding[0][0]
    return torch.nn.Conv2d(c_in, module.features, k, stride, pad)


def _flops(module, x_shape) -> float:
    """Floating-point operations of the layer's value and gradient: 3 products (output, input
    gradient, kernel gradient) of 2 per multiply-add, padding not counted."""
    window = math.prod(module.kernel_size)
    c_in, spatial = x_shape[-1], x_shape[1:-1]
    if isinstance(module, nn.ConvTranspose):
        positions = math.prod(spatial)  # every input meets every tap
    else:
        y = jax.eval_shape(module.init_with_output, jax.random.PRNGKey(0), jnp.zeros(x_shape))[0]
        positions = math.prod(y.shape[1:-1])
    return 3 * 2 * x_shape[0] * positions * window * c_in * module.features


def _torch_value_and_grad(torch, layer, x_shape):
    x = torch.randn(x_shape[0], x_shape[-1], *x_shape[1:-1], requires_grad=True)

    def call():
        layer.zero_grad(set_to_none=True)
        x.grad = None
        (layer(x) ** 2).sum().backward()

    return call


def _rows(cases, batch, repeats, scan_steps=0, torch=None, rate=None):
    rows = []
    for name, make, shape in cases:
        x = jax.random.normal(jax.random.PRNGKey(1), (batch, *shape) if batch else shape)
        fns = [_value_and_grad(make(m), x, scan_steps) for m in (nn, layers)]
        with_torch = torch is not None and not scan_steps
        if with_torch:
            fns.append(
                _torch_value_and_grad(torch, _torch_layer(torch, make(nn), shape[-1]), x.shape)
            )
        times = [statistics.median(t) for t in alternating(fns, repeats)]
        t_flax, t_ours = times[:2]
        row = {"layer": name, "flax_s": t_flax, "ours_s": t_ours, "ratio": t_flax / t_ours}
        line = f"| {name} | {t_flax:.4f} | {t_ours:.4f} | {t_flax / t_ours:.2f}× |"
        if with_torch:
            flops = _flops(make(nn), x.shape)
            row.update(torch_s=times[2], flops=flops, ours_vs_torch=times[2] / t_ours)
            line += (
                f" {times[2]:.4f} | {times[2] / t_ours:.2f}× | {flops / t_ours / 1e9:.0f} | "
                f"{flops / times[2] / 1e9:.0f} | {100 * flops / times[2] / rate:.0f}% |"
            )
        rows.append(row)
        print(line, flush=True)
    return rows


def _norm_rows(repeats, torch=None):
    rows = []
    for shape in NORM_CASES:
        x = jax.random.normal(jax.random.PRNGKey(1), shape) + 0.5
        fns = [_value_and_grad(m.GroupNorm(num_groups=16), x) for m in (nn, layers)]
        if torch is not None:
            tx = torch.randn(shape[0], shape[-1], *shape[1:-1], requires_grad=True)
            tlayer = torch.nn.GroupNorm(16, shape[-1])

            def torch_call(tx=tx, tlayer=tlayer):
                tlayer.zero_grad(set_to_none=True)
                tx.grad = None
                (tlayer(tx) ** 2).sum().backward()

            fns.append(torch_call)
        times = [statistics.median(t) for t in alternating(fns, repeats, settle=0.002)]
        row = {"shape": list(shape), "flax_s": times[0], "ours_s": times[1]}
        line = f"| {shape} | {1e3 * times[0]:.3f} | {1e3 * times[1]:.3f} | {times[0] / times[1]:.2f}× |"
        if torch is not None:
            row["torch_s"] = times[2]
            line += f" {1e3 * times[2]:.3f} | {times[2] / times[1]:.2f}× |"
        rows.append(row)
        print(line, flush=True)
    return rows


def _convt_part(n, h, c_in, c_out, part, mirrored):
    """A jitted input gradient (`part` "input") or kernel gradient ("kernel") of a 4×4
    stride-2 SAME transposed convolution, traced in the mirrored or the phases form."""
    x = jax.random.normal(jax.random.PRNGKey(1), (n, h, h, c_in))
    k = jax.random.normal(jax.random.PRNGKey(2), (4, 4, c_in, c_out)) * 0.05
    g = jax.random.normal(jax.random.PRNGKey(3), (n, 2 * h, 2 * h, c_out))
    pads = (layers.transpose_padding(4, 2, "SAME"),) * 2
    form = layers._conv_transpose_mirrored if mirrored else layers._conv_transpose
    f = lambda x, k: form(x, k, (2, 2), pads, None)  # noqa: E731
    if part == "input":
        fn = lambda x, k, g: jax.vjp(lambda x: f(x, k), x)[1](g)  # noqa: E731
    else:
        fn = lambda x, k, g: jax.vjp(lambda k: f(x, k), k)[1](g)  # noqa: E731
    compiled = jax.jit(fn).lower(x, k, g).compile()
    return lambda: jax.block_until_ready(compiled(x, k, g))


def _convt_rows(repeats):
    rows = []
    for n, h, c_in, c_out in CONVT_CASES:
        fns = [
            _convt_part(n, h, c_in, c_out, part, mirrored)
            for part in ("input", "kernel")
            for mirrored in (False, True)
        ]
        t = [statistics.median(s) for s in alternating(fns, repeats, settle=0.002)]
        rows.append(
            {
                "batch": n,
                "input": [h, h],
                "channels": [c_in, c_out],
                "input_grad_s": {"phases": t[0], "mirrored": t[1]},
                "kernel_grad_s": {"phases": t[2], "mirrored": t[3]},
            }
        )
        print(
            f"| {n} | {h}×{h} | {c_in}->{c_out} | {1e3 * t[0]:.2f} | {1e3 * t[1]:.2f} | "
            f"{t[0] / t[1]:.2f}× | {1e3 * t[2]:.2f} | {1e3 * t[3]:.2f} | {t[2] / t[3]:.2f}× |",
            flush=True,
        )
    return rows


def _kgrad_fns(n, h, c_in, c_out, torch=None):
    """Jitted kernel gradients of a 3×3 stride-1 SAME convolution (ours: per-tap products, or
    XLA's form below `layers.PRODUCTS_MIN_OUT_CHANNELS`; flax: XLA's convolution with batch
    and features swapped), one tap's product xᵀ[C_in, rows] · g[rows, C_out] as the layout
    gives it (TN) and with the first operand stored transposed beforehand (NN), and PyTorch's
    kernel gradient where given."""
    x = jax.random.normal(jax.random.PRNGKey(1), (n, h, h, c_in))
    k = jax.random.normal(jax.random.PRNGKey(2), (3, 3, c_in, c_out)) * 0.05
    g = jax.random.normal(jax.random.PRNGKey(3), (n, h, h, c_out))
    dn = ("NHWC", "HWIO", "NHWC")
    forms = {
        "ours": lambda x, k: layers.conv(x, k, (1, 1)),
        "flax": lambda x, k: jax.lax.conv_general_dilated(
            x, k, (1, 1), "SAME", dimension_numbers=dn
        ),
    }
    fns = []
    for form in forms.values():
        fn = jax.jit(lambda x, k, g, form=form: jax.vjp(lambda k: form(x, k), k)[1](g)[0])
        compiled = fn.lower(x, k, g).compile()
        fns.append(lambda c=compiled: jax.block_until_ready(c(x, k, g)))
    a, b = x.reshape(-1, c_in), g.reshape(-1, c_out)
    a_t = jax.block_until_ready(jnp.array(a.T))  # stored [C_in, rows]
    tn = jax.jit(lambda a, b: jax.lax.dot_general(a, b, (((0,), (0,)), ((), ())))).lower(a, b)
    nn_ = jax.jit(lambda a_t, b: a_t @ b).lower(a_t, b)
    tn, nn_ = tn.compile(), nn_.compile()
    fns.append(lambda: jax.block_until_ready(tn(a, b)))
    fns.append(lambda: jax.block_until_ready(nn_(a_t, b)))
    if torch is not None:
        tx, tg = torch.randn(n, c_in, h, h), torch.randn(n, c_out, h, h)
        tw = torch.randn(c_out, c_in, 3, 3)
        args = (tg, tx, tw, None, (1, 1), (1, 1), (1, 1), False, (0, 0), 1, (False, False, True))
        fns.append(lambda: torch.ops.aten.convolution_backward(*args))
    return fns


def _kgrad_rows(repeats, torch=None):
    rows = []
    for n, h, c_in, c_out in KGRAD_CASES:
        fns = _kgrad_fns(n, h, c_in, c_out, torch)
        t = [statistics.median(s) for s in alternating(fns, repeats, settle=SETTLE_S)]
        flops = 2 * n * h * h * 9 * c_in * c_out
        rate = [flops / t[0], flops / t[1], flops / 9 / t[2], flops / 9 / t[3]]
        row = {
            "batch": n,
            "size": h,
            "channels": [c_in, c_out],
            "flops": flops,
            "ours_s": t[0],
            "flax_s": t[1],
            "tap_product_tn_s": t[2],
            "tap_product_nn_s": t[3],
        }
        line = (
            f"| {n} | {h}×{h} | {c_in}->{c_out} | {1e3 * t[0]:.1f} ({rate[0] / 1e9:.0f}) "
            f"| {1e3 * t[1]:.1f} ({rate[1] / 1e9:.0f}) | {rate[2] / 1e9:.0f} | {rate[3] / 1e9:.0f} |"
        )
        if torch is not None:
            row["torch_s"] = t[4]
            line += f" {1e3 * t[4]:.1f} ({flops / t[4] / 1e9:.0f}) | {t[4] / t[0]:.2f}× |"
        rows.append(row)
        print(line, flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=240)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--tables",
        default="layers,loops",
        help="comma list of: layers, loops, norm, convt, kgrad",
    )
    ap.add_argument("--json", default="")
    ap.add_argument("--torch-threads", type=int, default=2, help="0: no PyTorch column")
    args = ap.parse_args(argv)
    tables = args.tables.split(",")
    if bad := [t for t in tables if t not in ("layers", "loops", "norm", "convt", "kgrad")]:
        ap.error(f"unknown table(s) {bad}; valid choices: layers, loops, norm, convt, kgrad")
    configure_host()  # before the first computation; flax and ours share it
    out = {"cpu": cpu_model(), "device": str(jax.devices()[0]), "jax": jax.__version__}
    print(f"{out['cpu']}, {out['device']}, jax {out['jax']}, median of {args.repeats}")
    torch = rate = None
    if args.torch_threads > 0:
        try:
            import torch
        except ImportError:
            torch = None
    if "layers" in tables:
        head = "| layer | flax (s) | ours (s) | ratio |"
        rule = "| --- | --- | --- | --- |"
        if torch is not None:
            rates = {
                "jax": jax_matmul_rate(),
                "torch": torch_matmul_rate(torch, args.torch_threads),
            }
            rate = max(rates.values())
            out["matmul_rate_flops"] = rates
            print(
                f"float32 matrix products (1024³): jax {rates['jax'] / 1e9:.0f}, PyTorch "
                f"({args.torch_threads} threads) {rates['torch'] / 1e9:.0f} GFLOP/s"
            )
            head += " PyTorch (s) | ours vs PyTorch | ours GFLOP/s | PyTorch GFLOP/s | PyTorch / matmul rate |"
            rule += " --- | --- | --- | --- | --- |"
        print(f"\nvalue-and-gradient, batch {args.batch}\n{head}\n{rule}")
        out["layers"] = _rows(CASES, args.batch, args.repeats, torch=torch, rate=rate)
    if "loops" in tables:
        print(f"\n3x3 convolution inside a {LOOP_STEPS}-step lax.scan, value-and-gradient")
        print("| maps | flax (s) | ours (s) | ratio |\n| --- | --- | --- | --- |")
        cases = [(f"{s} {s[-1]}->{c}", lambda m, c=c: m.Conv(c, (3, 3)), s) for s, c in LOOP_CASES]
        out["loops"] = _rows(cases, 0, args.repeats, scan_steps=LOOP_STEPS)
    if "norm" in tables:
        print("\nGroupNorm (16 groups), value-and-gradient, milliseconds")
        head, rule = "| input | flax | ours | flax / ours |", "| --- | --- | --- | --- |"
        if torch is not None:
            torch.set_num_threads(args.torch_threads)
            head, rule = head + " PyTorch | PyTorch / ours |", rule + " --- | --- |"
        print(f"{head}\n{rule}")
        out["norm"] = _norm_rows(args.repeats, torch=torch)
    if "convt" in tables:
        print("\n4×4 stride-2 transposed convolution, each gradient alone, milliseconds")
        print(
            "| batch | input | channels | input grad, phases | mirrored | ratio "
            "| kernel grad, phases | mirrored | ratio |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        )
        out["convt"] = _convt_rows(args.repeats)
    if "kgrad" in tables:
        print("\n3×3 stride-1 convolution, kernel gradient alone, ms (GFLOP/s)")
        head = (
            "| batch | input | channels | ours | flax (XLA's convolution) "
            "| one tap's product, TN GFLOP/s | NN GFLOP/s |"
        )
        rule = "| --- | --- | --- | --- | --- | --- | --- |"
        if torch is not None:
            torch.set_num_threads(args.torch_threads)
            head, rule = head + " PyTorch | PyTorch / ours |", rule + " --- | --- |"
        print(f"{head}\n{rule}")
        out["kgrad"] = _kgrad_rows(args.repeats, torch=torch)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
