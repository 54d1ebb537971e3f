"""generative.layers vs flax.linen: forward + backward time of the SRVP frame-network layers
and of the physics conv models' GroupNorm.

    .venv/bin/python benchmarks/layers.py [--batch 240] [--repeats 3]
        [--tables all|layers|shared|loops|bias|kgrad|torch]

Each row: one layer at the SRVP Stochastic Moving MNIST shapes (batch 16 × 15 frames = 240
images), the time of a jitted value-and-gradient (w.r.t. parameters and input) of a sum of
squares of its output, flax's layer and ours in the same run, and the ratio. Both compute the
same function (tests/core/test_layers.py checks values and gradients to 1e-10 in float64).

Second table: a decoder layer reading skip features that are the same for all of a video's
frames (SRVP with skips, the SST physics decoder), 15 frames per video: flax's layer on the
concatenation [h, skip repeated per frame], ours on the same concatenation, and ours given the
skips once per video (`shared`: their part computed per video).
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from generative import blas, layers
from generative.core.host_memory import configure_host_memory

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import alternating, torch_reference  # noqa: E402

# name, flax layer, ours, input shape (without batch)
CASES = [
    ("conv 4x4/2 1->64 @64", lambda m: m.Conv(64, (4, 4), 2, ((1, 1), (1, 1))), (64, 64, 1)),
    ("conv 4x4/2 64->128 @32", lambda m: m.Conv(128, (4, 4), 2, ((1, 1), (1, 1))), (32, 32, 64)),
    ("conv 4x4/2 256->512 @8", lambda m: m.Conv(512, (4, 4), 2, ((1, 1), (1, 1))), (8, 8, 256)),
    ("conv 4x4 valid 512->128 @4 (to 1x1)", lambda m: m.Conv(128, (4, 4), 1, "VALID"), (4, 4, 512)),
    ("conv 3x3/1 64->64 @32", lambda m: m.Conv(64, (3, 3), 1, ((1, 1), (1, 1))), (32, 32, 64)),
    (
        "convT 4x4 valid 276->512 @1 (to 4x4)",
        lambda m: m.ConvTranspose(512, (4, 4), padding="VALID"),
        (1, 1, 276),
    ),
    ("convT 4x4/2 512->256 @4", lambda m: m.ConvTranspose(256, (4, 4), (2, 2)), (4, 4, 512)),
    ("convT 4x4/2 128->64 @16", lambda m: m.ConvTranspose(64, (4, 4), (2, 2)), (16, 16, 128)),
    ("convT 4x4/2 64->1 @32", lambda m: m.ConvTranspose(1, (4, 4), (2, 2)), (32, 32, 64)),
    ("batchnorm 64 @32", lambda m: m.BatchNorm(use_running_average=False), (32, 32, 64)),
    ("batchnorm 512 @4", lambda m: m.BatchNorm(use_running_average=False), (4, 4, 512)),
    ("groupnorm 16 groups 64 @32", lambda m: m.GroupNorm(16), (32, 32, 64)),
    ("groupnorm 16 groups 512 @4", lambda m: m.GroupNorm(16), (4, 4, 512)),
]


def _time(fn, *args, repeats):
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best


# name, flax layer, ours, h shape, skip channels (skip shape = h shape with these channels)
SHARED_CASES = [
    (
        "convT 4x4/2 (128+128)->64 @16 (DCGAN decoder)",
        lambda m: m.ConvTranspose(64, (4, 4), (2, 2)),
        (16, 16, 128),
        128,
    ),
    (
        "conv 3x3 (128+128)->128 @32 (VGG decoder)",
        lambda m: m.Conv(128, (3, 3), 1, ((1, 1), (1, 1))),
        (32, 32, 128),
        128,
    ),
]
FRAMES_PER_VIDEO = 15


def _shared_step(module, h, skip, mode):
    """value-and-gradient (parameters, h, skip) of the layer on [h, skip] with skip [G, ...]
    repeated over each video's frames: as one concatenation, or given as `shared`."""
    r = h.shape[0] // skip.shape[0]
    full = lambda h, s: jnp.concatenate([h, jnp.repeat(s, r, axis=0)], -1)  # noqa: E731
    params = module.init(jax.random.PRNGKey(0), full(h, skip))["params"]
    if mode == "shared":
        apply = lambda p, h, s: module.apply({"params": p}, h, s)  # noqa: E731
    else:
        apply = lambda p, h, s: module.apply({"params": p}, full(h, s))  # noqa: E731
    loss = lambda p, h, s: (apply(p, h, s) ** 2).sum()  # noqa: E731
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2))), params


def _step(module, x):
    variables = module.init(jax.random.PRNGKey(0), x)
    params = variables["params"]
    rest = {k: v for k, v in variables.items() if k != "params"}

    def loss(p, x):
        if rest:
            y, _ = module.apply({"params": p, **rest}, x, mutable=list(rest))
        else:
            y = module.apply({"params": p}, x)
        return (y**2).sum()

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1))), params


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=240)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--tables",
        choices=["all", "layers", "shared", "loops", "bias", "kgrad", "torch"],
        default="all",
    )
    args = p.parse_args(argv)
    configure_host_memory()  # before the first computation; flax and ours share it
    print(f"device: {jax.devices()[0].platform}, batch {args.batch}, best of {args.repeats}")
    videos = max(1, args.batch // FRAMES_PER_VIDEO)
    if args.tables in ("all", "layers"):
        _layer_rows(args.batch, args.repeats)
    if args.tables in ("all", "shared"):
        _shared_rows(videos, args.repeats)
        _decoder_rows(videos, args.repeats)
    if args.tables in ("all", "loops"):
        _loop_rows(args.repeats)
    if args.tables in ("all", "bias"):
        _bias_rows(args.repeats)
    if args.tables in ("all", "kgrad"):
        _kgrad_rows(args.batch, args.repeats)
    if args.tables in ("all", "torch"):
        _torch_rows(args.batch, args.repeats)


def _torch_rows(batch: int, repeats: int) -> None:
    """The strided convolutions of the DCGAN encoders and decoders, split into forward, input
    gradient and kernel gradient, ours against PyTorch's (oneDNN) in this process, timed in
    turn (`_common.alternating`): where the training steps' remaining gap to PyTorch lies.
    Kernel gradients: "auto" (CPU: block-shift products by MKL, `generative.blas`), the same
    products by XLA ("XLA products", `blas.backend("xla")`), and for the encoder layers XLA's
    own kernel gradient (`kernel_grad="xla"`)."""
    tref = torch_reference()
    if tref is None:
        print("\nPyTorch not installed: no per-part comparison (pip install torch)")
        return
    import torch
    import torch.nn.functional as F

    print(
        f"\nstrided 4x4 convolutions, batch {batch}: ours against PyTorch (same process, timed "
        "in turn), best of the repeats\n| layer | part | ours (s) | PyTorch (s) | ratio |\n"
        "| --- | --- | --- | --- | --- |"
    )
    cases = [("convT", *c) for c in KGRAD_CASES] + [("conv", 64, 128, 32), ("conv", 128, 256, 16)]
    for kind, c_in, c_out, size in cases:
        x = jax.random.normal(jax.random.PRNGKey(0), (batch, size, size, c_in))
        k = 0.02 * jax.random.normal(jax.random.PRNGKey(1), (4, 4, c_in, c_out))
        xt = torch.randn(batch, c_in, size, size)
        if kind == "convT":
            wt = 0.02 * torch.randn(c_in, c_out, 4, 4)
            yt = F.conv_transpose2d(xt, wt, stride=2, padding=1)
            fwd = lambda x, k, g: layers.conv_transpose(x, k, (2, 2), "SAME")  # noqa: E731
            variants = [(" (auto)", fwd)]
        else:
            wt = 0.02 * torch.randn(c_out, c_in, 4, 4)
            yt = F.conv2d(xt, wt, stride=2, padding=1)
            variants = [
                (
                    f" ({kg})",
                    lambda x, k, g, kg=kg: layers.conv(x, k, (2, 2), ((1, 1), (1, 1)), None, kg),
                )
                for kg in ("xla", "auto")
            ]
        gt = torch.randn_like(yt)
        g = jax.random.normal(jax.random.PRNGKey(2), yt.permute(0, 2, 3, 1).shape)

        def torch_part(mask, xt=xt, wt=wt, gt=gt, transposed=kind == "convT"):
            return lambda: torch.ops.aten.convolution_backward(
                gt, xt, wt, None, [2, 2], [1, 1], [1, 1], transposed, [0, 0], 1, mask
            )

        if kind == "convT":
            t_fwd = lambda xt=xt, wt=wt: F.conv_transpose2d(xt, wt, stride=2, padding=1)  # noqa: E731
        else:
            t_fwd = lambda xt=xt, wt=wt: F.conv2d(xt, wt, stride=2, padding=1)  # noqa: E731
        torch_parts = {
            "forward": t_fwd,
            "input gradient": torch_part([True, False, False]),
            "kernel gradient": torch_part([False, True, False]),
        }
        fn = variants[-1][1]
        rows = [
            ("forward", "", "mkl", fn),
            (
                "input gradient",
                "",
                "mkl",
                lambda x, k, g, fn=fn: jax.vjp(lambda x: fn(x, k, g), x)[1](g)[0],
            ),
        ]
        backends = [("", "mkl")] + ([(", XLA products", "xla")] if blas.ready() else [])
        for suffix, fn in variants:
            for more, backend in backends if suffix != " (xla)" else [("", "mkl")]:
                rows.append(
                    (
                        "kernel gradient",
                        suffix + more,
                        backend,
                        lambda x, k, g, fn=fn: jax.vjp(lambda k: fn(x, k, g), k)[1](g)[0],
                    )
                )
        for part, suffix, backend, ours in rows:
            with blas.backend(backend):  # traced (and compiled) with that backend's products
                ours = jax.jit(ours).lower(x, k, g).compile()
            a, b = alternating(
                [
                    lambda ours=ours, x=x, k=k, g=g: jax.block_until_ready(ours(x, k, g)),
                    torch_parts[part],
                ],
                repeats,
            )
            print(
                f"| {kind} {c_in}->{c_out} @{size}{suffix if part == 'kernel gradient' else ''} "
                f"| {part} | {min(a):.3f} "
                f"| {min(b):.3f} | {min(b) / min(a):.2f}× |",
                flush=True,
            )


def _layer_rows(batch: int, repeats: int) -> None:
    print("| layer | flax (s) | ours (s) | speed-up |\n| --- | --- | --- | --- |")
    for name, make, shape in CASES:
        x = jax.random.normal(jax.random.PRNGKey(1), (batch, *shape), jnp.float32)
        times = []
        for mod in (nn, layers):
            fn, params = _step(make(mod), x)
            times.append(_time(fn, params, x, repeats=repeats))
        print(f"| {name} | {times[0]:.3f} | {times[1]:.3f} | {times[0] / times[1]:.2f}× |")


def _shared_rows(videos: int, repeats: int) -> None:
    print(
        f"\nskips shared by the {FRAMES_PER_VIDEO} frames of each of {videos} videos "
        "(value-and-gradient w.r.t. parameters, h and skips)"
    )
    print(
        "| layer | flax, concatenation (s) | ours, concatenation (s) | ours, shared (s) "
        "| shared vs flax | shared vs ours concatenated |\n| --- | --- | --- | --- | --- | --- |"
    )
    for name, make, shape, c_skip in SHARED_CASES:
        h = jax.random.normal(jax.random.PRNGKey(1), (videos * FRAMES_PER_VIDEO, *shape))
        skip = jax.random.normal(jax.random.PRNGKey(2), (videos, *shape[:-1], c_skip))
        times = []
        for mod, mode in ((nn, "concat"), (layers, "concat"), (layers, "shared")):
            fn, params = _shared_step(make(mod), h, skip, mode)
            times.append(_time(fn, params, h, skip, repeats=repeats))
        print(
            f"| {name} | {times[0]:.3f} | {times[1]:.3f} | {times[2]:.3f} "
            f"| {times[0] / times[2]:.2f}× | {times[1] / times[2]:.2f}× |"
        )


BIAS_CASES = [(128, 32, 32, 64), (128, 16, 16, 128), (2048, 8, 8, 256), (512, 64, 64, 1)]


def _bias_rows(repeats: int) -> None:
    """A convolution output plus its bias: value-and-gradient (input, bias) of a weighted sum
    of tanh of y + b, with JAX's own transpose of the broadcast (a reduction over every
    leading axis) and with `layers.bias_add` (`_col_sum`: a vector-matrix product from 4097
    rows and 8 channels)."""
    print(
        "\nconv output + bias, value-and-gradient (input, bias)\n| output shape | plain add (s) "
        "| bias_add (s) | speed-up |\n| --- | --- | --- | --- |"
    )
    plain = lambda y, b: y + b  # noqa: E731
    for shape in BIAS_CASES:
        y = jax.random.normal(jax.random.PRNGKey(1), shape)
        w = jax.random.normal(jax.random.PRNGKey(2), shape)
        b = jnp.zeros(shape[-1:])
        times = []
        for add in (plain, layers.bias_add):
            loss = lambda y, b, add=add, w=w: (jnp.tanh(add(y, b)) * w).sum()  # noqa: E731
            fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
            times.append(_time(fn, y, b, repeats=repeats))
        print(f"| {shape} | {times[0]:.4f} | {times[1]:.4f} | {times[0] / times[1]:.2f}× |")


# the stride-2 4x4 transposed convolutions of the DCGAN decoders: (C_in, C_out, input size)
KGRAD_CASES = [(128, 64, 16), (256, 128, 8), (512, 256, 4)]


def _kgrad_per_tap(inp, g, window, strides):
    """The previous form of `layers.valid_conv_kernel_grad` for strides > 1, kept here as
    the baseline: one product per tap on a strided slice of inp."""
    out, g2 = g.shape[1:-1], g.reshape(-1, g.shape[-1])
    taps = []
    for j in np.ndindex(*window):
        index = (slice(None),) + tuple(
            slice(a, a + s * (q - 1) + 1, s) for a, s, q in zip(j, strides, out)
        )
        x = inp[index].reshape(-1, inp.shape[-1])
        taps.append(jax.lax.dot_general(x, g2, (((0,), (0,)), ((), ()))))
    return jnp.stack(taps).reshape(*window, inp.shape[-1], g.shape[-1])


def _kgrad_rows(batch: int, repeats: int) -> None:
    """Kernel gradient of a DCGAN decoder layer (4x4, stride 2, 'SAME'), as its backward pass
    computes it: the gradient of the strided VALID convolution of the padded output
    cotangent (`layers.valid_conv_kernel_grad`), against one product per tap and against
    XLA's own kernel gradient of that convolution."""
    print(
        f"\nkernel gradient of a 4x4 stride-2 transposed convolution, batch {batch}\n"
        "| layer | XLA (s) | per-tap products (s) | space-to-depth products (s) "
        "| vs per-tap | vs XLA |\n| --- | --- | --- | --- | --- | --- |"
    )
    window, strides = (4, 4), (2, 2)
    dn = ("NHWC", "HWIO", "NHWC")
    for c_in, c_out, q in KGRAD_CASES:
        inp = jax.random.normal(jax.random.PRNGKey(0), (batch, 2 * q + 2, 2 * q + 2, c_out))
        g = jax.random.normal(jax.random.PRNGKey(1), (batch, q, q, c_in))
        w = jnp.zeros((*window, c_out, c_in))

        def xla(inp, g, w=w):
            conv = lambda w: jax.lax.conv_general_dilated(  # noqa: E731
                inp, w, strides, "VALID", dimension_numbers=dn
            )
            return jax.vjp(conv, w)[1](g)[0]

        fns = [
            xla,
            lambda inp, g: _kgrad_per_tap(inp, g, window, strides),
            lambda inp, g: layers.valid_conv_kernel_grad(inp, g, window, strides),
        ]
        times = [_time(jax.jit(fn), inp, g, repeats=repeats) for fn in fns]
        print(
            f"| convT {c_in}->{c_out} @{q} | {times[0]:.3f} | {times[1]:.3f} | {times[2]:.3f} "
            f"| {times[1] / times[2]:.2f}× | {times[0] / times[2]:.2f}× |"
        )


LOOP_STEPS = 10
LOOP_CASES = [((16, 16, 16, 64), 64), ((16, 16, 16, 128), 128), ((16, 32, 32, 64), 64)]


def _loop_rows(repeats: int) -> None:
    """A convolution inside a loop (`lax.scan` of h <- h + tanh(conv3x3(h)), as an ODE vector
    field or a scanned residual block is evaluated): value-and-gradient with XLA's kernel
    gradient and with the per-tap products (`kernel_grad="taps"`), and XLA's at top level
    (the scan unrolled) for reference."""
    print(
        f"\nconvolution inside a {LOOP_STEPS}-step lax.scan, value-and-gradient (parameters, "
        "input)\n| maps, 3x3 conv | XLA kernel gradient (s) | per-tap products (s) | speed-up "
        "| XLA, scan unrolled (s) |\n| --- | --- | --- | --- | --- |"
    )
    for shape, c_out in LOOP_CASES:
        x = jax.random.normal(jax.random.PRNGKey(1), shape)
        times = []
        for grad, unroll in (("xla", 1), ("taps", 1), ("xla", LOOP_STEPS)):
            m = layers.Conv(c_out, (3, 3), kernel_grad=grad)
            params = m.init(jax.random.PRNGKey(0), x)

            def loss(p, x, m=m, unroll=unroll):
                body = lambda h, _: (h + jnp.tanh(m.apply(p, h)), None)  # noqa: E731
                h, _ = jax.lax.scan(body, x, None, length=LOOP_STEPS, unroll=unroll)
                return (h**2).sum()

            fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
            times.append(_time(fn, params, x, repeats=repeats))
        print(
            f"| {shape} {shape[-1]}->{c_out} | {times[0]:.3f} | {times[1]:.3f} "
            f"| {times[0] / times[1]:.1f}× | {times[2]:.3f} |"
        )


def _decoder_rows(videos: int, repeats: int) -> None:
    """The SRVP decoders with skips (KTH/BAIR/Human presets' VGG, and DCGAN) at the paper's
    width: skips given once per frame (the concatenation's cost) against once per video."""
    from video import model as srvp

    print(
        f"\nSRVP decoder with skips, {videos} videos × {FRAMES_PER_VIDEO} frames, value-and-"
        "gradient (parameters, inputs, skips)\n| decoder | skips per frame (s) | skips per "
        "video (s) | speed-up |\n| --- | --- | --- | --- |"
    )
    n = videos * FRAMES_PER_VIDEO
    for archi in ("dcgan", "vgg"):
        cfg = srvp.SRVPConfig(archi=archi, skipco=True, ny=50, nz=50)
        x = jnp.zeros((videos, 1, 64, 64, cfg.nc))
        enc = srvp.Encoder(cfg.archi, cfg.nf, cfg.nhx)
        skips = enc.apply(enc.init(jax.random.PRNGKey(0), x[:, 0], False), x[:, 0], False)[1]
        dec = srvp.Decoder(cfg.archi, cfg.nf, cfg.nc, True)
        v = jax.random.normal(jax.random.PRNGKey(1), (n, cfg.nw + cfg.ny))
        variables = dec.init(jax.random.PRNGKey(2), v, skips, True)

        def loss(p, v, skips, per_frame, dec=dec, stats=variables["batch_stats"]):
            if per_frame:
                skips = [jnp.repeat(s, FRAMES_PER_VIDEO, axis=0) for s in skips]
            out, _ = dec.apply(
                {"params": p, "batch_stats": stats},
                v,
                skips,
                True,
                mutable=["batch_stats"],
            )
            return (out**2).sum()

        times = []
        for per_frame in (True, False):
            fn = jax.jit(
                jax.value_and_grad(functools.partial(loss, per_frame=per_frame), (0, 1, 2))
            )
            times.append(_time(fn, variables["params"], v, skips, repeats=repeats))
        print(f"| {archi} | {times[0]:.3f} | {times[1]:.3f} | {times[0] / times[1]:.2f}× |")


if __name__ == "__main__":
    main()
