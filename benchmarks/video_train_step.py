"""SRVP training-step and best-of-100 evaluation throughput at the Stochastic Moving MNIST setting.

    .venv/bin/python benchmarks/video_train_step.py [--batches 16 64] [--repeats 5]
        [--eval-videos 2 (0: no evaluation)] [--out benchmarks/results/video_train_step.json]

Paper model (DCGAN64, nf=64, ny=nz=20, 10.68M parameters), 64×64 frames, seq_len 15, Adam.
Each configuration: compile time measured separately (lower + compile), 2 warm-up calls,
then `--repeats` timed calls with `block_until_ready`; the median and min/max are reported.
With the in-process PyTorch baseline our training steps and PyTorch's alternate (one of each in
turn, `_common.alternating`), so that a slow phase of the host weighs on both sides alike.
Peak memory: XLA's compiled memory analysis (arguments + outputs + temporaries) and, on GPU, the
device allocator's peak. Evaluation: best-of-100 on `--eval-videos` videos (5 conditioning + 20
predicted frames), the 100 samples vectorised, PSNR and SSIM on device.
Frames come from Moving MNIST generated on the fly from random 28×28 "digits" (the content
does not change the cost).

PyTorch baseline: when `torch` is installed (`.venv/bin/pip install torch==2.13.0`, the CPU
build), `benchmarks/torch_reference.py` times the same model in PyTorch (2 threads, its own
default layout and loops) in this run: one training step at each batch size, and the reference
test protocol (a Python loop over the 100 samples, each re-running inference on the
conditioning frames and decoding them, then the prior rollout, PSNR and SSIM) on the same
number of videos. The ratios are against those same-run timings.

Plain XLA: every workload is also timed with `generative.layers.plain_xla()` (flax's own
modules, the program a GPU or TPU runs) in the same run, so that the CPU forms' gain is
printed beside the comparison with PyTorch. The CPU model is printed with the figures.

Host allocator: the script first calls `generative.core.host_memory.configure_host_memory()`
(glibc keeps freed memory instead of unmapping it, so XLA's per-step buffers are not
page-faulted again at every step). PyTorch timed in this process shares that setting; it is
also timed in a fresh process with glibc's defaults, as the reference runs when launched on
its own, and both ratios are printed. `GENERATIVE_HOST_MALLOC=system` runs ours with glibc's
defaults too.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from _common import (  # noqa: E402
    SETTLE_S,
    alternating,
    configure_host,
    cpu_model,
    host_memory_state,
    torch_glibc_default,
    torch_reference,
)

from generative import layers  # noqa: E402
from generative.core.cpu_codegen import uses_xla_convolutions, xla_convolutions_options  # noqa: E402
from generative.core.train import TrainState, loss_step  # noqa: E402
from generative.data.moving_mnist import moving_mnist_batch  # noqa: E402
from video import evaluation, srvp  # noqa: E402

SEQ_LEN, NT_COND, HORIZON, N_SAMPLES = 15, 5, 20, 100


def _fmt(value, spec: str, suffix: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{suffix}"


def _timed(fn, *args, repeats: int):
    for _ in range(2):  # warm-up
        jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return times


def _memory(compiled) -> dict:
    out = {}
    try:
        m = compiled.memory_analysis()
        out["xla_bytes"] = int(
            m.argument_size_in_bytes
            + m.output_size_in_bytes
            + m.temp_size_in_bytes
            - m.alias_size_in_bytes
        )
    except Exception:  # noqa: BLE001 - not every backend reports it
        pass
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        out["device_peak_bytes"] = int(stats["peak_bytes_in_use"])
    return out


def bench_train(cfg, batch: int, repeats: int, digits, tref=None, plain_xla=True) -> dict:
    tx = optax.adam(3e-4)
    v = jax.jit(lambda k: srvp.init_variables(cfg, k, SEQ_LEN))(jax.random.PRNGKey(0))
    state = TrainState(
        jnp.zeros((), jnp.int32), v["params"], tx.init(v["params"]), v["batch_stats"]
    )

    def loss_fn(params, bstats, x, key):
        noise = srvp.sample_noise(cfg, key, x.shape[0], x.shape[1])
        terms, new = srvp.elbo(cfg, {"params": params, "batch_stats": bstats}, x, noise)
        return terms.loss, ({}, new)

    x = moving_mnist_batch(jax.random.PRNGKey(1), digits, batch, SEQ_LEN, True)
    key = jax.random.PRNGKey(2)
    t0 = time.perf_counter()
    options = xla_convolutions_options()  # as `video.train` compiles it
    with layers.xla_kernel_gradients(uses_xla_convolutions(options)):
        lowered = jax.jit(loss_step(loss_fn, tx)).lower(state, x, key)
    compiled = lowered.compile(compiler_options=options)
    compile_s = time.perf_counter() - t0
    fns = [lambda: jax.block_until_ready(compiled(state, x, key))]
    if plain_xla:
        with layers.plain_xla():  # flax's modules: the GPU/TPU program
            plain = jax.jit(loss_step(loss_fn, tx)).lower(state, x, key).compile()
        fns.append(lambda: jax.block_until_ready(plain(state, x, key)))
    torch_row = {}
    # ours, plain XLA's and PyTorch's steps alternate: the host's slow phases hit all alike
    if tref is None:
        times, *ptimes = alternating(fns, repeats, warmup=2)
    else:
        tmodel, tstep = tref.srvp_train_step(batch, SEQ_LEN)
        times, *ptimes, ttimes = alternating([*fns, tstep], repeats, warmup=2, settle=SETTLE_S)
        torch_row = {
            "torch_params": tref.num_params(tmodel),
            "torch_s_per_step": statistics.median(ttimes),
            "torch_s_per_step_min": min(ttimes),
            "torch_s_per_step_max": max(ttimes),
        }
        del tmodel, tstep
        sub = torch_glibc_default("srvp_train", {"batch": batch, "seq_len": SEQ_LEN}, repeats, 2)
        if sub:
            torch_row["torch_glibc_default_s_per_step"] = statistics.median(sub["times"])
    med = statistics.median(times)
    if "torch_glibc_default_s_per_step" in torch_row:
        torch_row["speedup_vs_pytorch_glibc_default"] = (
            torch_row["torch_glibc_default_s_per_step"] / med
        )
    ref = torch_row.get("torch_s_per_step")
    plain_row = {}
    if ptimes:
        plain_row = {
            "plain_xla_s_per_step": statistics.median(ptimes[0]),
            "speedup_vs_plain_xla": statistics.median(ptimes[0]) / med,
        }
    row = {
        "batch": batch,
        "compiler_options": options,
        "compile_s": compile_s,
        "s_per_step": med,
        **plain_row,
        "s_per_step_min": min(times),
        "s_per_step_max": max(times),
        "steps_per_s": 1 / med,
        "repeats": repeats,
        **_memory(compiled),
        **torch_row,
        "pytorch_s_per_step": ref,
        "speedup_vs_pytorch": ref / med if ref else None,
    }
    print(json.dumps(row), flush=True)
    return row


def bench_eval(cfg, videos: int, repeats: int, digits, tref=None) -> dict:
    v = jax.jit(lambda k: srvp.init_variables(cfg, k, SEQ_LEN))(jax.random.PRNGKey(0))
    x = moving_mnist_batch(jax.random.PRNGKey(3), digits, videos, NT_COND + HORIZON, True)
    key = jax.random.PRNGKey(4)
    fn = lambda v, x, k: evaluation.sample_and_score(cfg, v, x, k, NT_COND, HORIZON, N_SAMPLES)
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(v, x, key).compile()
    compile_s = time.perf_counter() - t0
    with layers.plain_xla():
        plain = jax.jit(fn).lower(v, x, key).compile()
    times, ptimes = alternating(
        [
            lambda: jax.block_until_ready(compiled(v, x, key)),
            lambda: jax.block_until_ready(plain(v, x, key)),
        ],
        repeats,
    )
    med = statistics.median(times)

    # The reference protocol (a loop over samples, each one re-encoding the conditioning frames
    # and decoding every frame, as a PyTorch test loop does), same model, same run.
    def one_sample(v, x, k):
        gen = srvp.generate(cfg, v, x[:, :NT_COND], k, HORIZON)
        return evaluation._frame_scores(gen[:, NT_COND:], x[:, NT_COND:], None)

    single = jax.jit(one_sample)
    keys = jax.random.split(key, N_SAMPLES)

    def loop(v, x):
        scores = [single(v, x, k) for k in keys]
        return jax.tree.map(lambda *a: jnp.stack(a).max(0), *scores)

    loop_times = _timed(loop, v, x, repeats=repeats)
    loop_med = statistics.median(loop_times)
    torch_row = {}
    if tref is not None:
        _, tcall = tref.srvp_eval_call(videos, NT_COND, HORIZON, N_SAMPLES)
        ttimes = tref.timed(tcall, repeats, warmup=1)
        tmed = statistics.median(ttimes)
        torch_row = {
            "torch_s_per_call": tmed,
            "torch_videos_per_s": videos / tmed,
            "speedup_vs_pytorch": tmed / med,
        }
        kw = {"videos": videos, "nt_cond": NT_COND, "horizon": HORIZON, "n_samples": N_SAMPLES}
        sub = torch_glibc_default("srvp_eval", kw, repeats, 1)
        if sub:
            torch_row["torch_glibc_default_s_per_call"] = statistics.median(sub["times"])
            torch_row["speedup_vs_pytorch_glibc_default"] = (
                torch_row["torch_glibc_default_s_per_call"] / med
            )
    return {
        **torch_row,
        "videos_per_call": videos,
        "plain_xla_s_per_call": statistics.median(ptimes),
        "speedup_vs_plain_xla": statistics.median(ptimes) / med,
        "loop_s_per_call": loop_med,
        "loop_videos_per_s": videos / loop_med,
        "speedup_vs_loop": loop_med / med,
        "n_samples": N_SAMPLES,
        "compile_s": compile_s,
        "s_per_call": med,
        "videos_per_s": videos / med,
        "repeats": repeats,
        **_memory(compiled),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, nargs="+", default=[16, 64])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument(
        "--eval-videos", type=int, default=2, help="videos per evaluation call; 0 skips it"
    )
    p.add_argument("--eval-repeats", type=int, default=3)
    p.add_argument("--no-torch", action="store_true", help="skip the same-run PyTorch baseline")
    p.add_argument("--torch-threads", type=int, default=2)
    p.add_argument(
        "--plain-xla-max-batch",
        type=int,
        default=16,
        help="time the plain-XLA program (flax's modules) only up to this batch size: its "
        "transposed-convolution gradients take minutes per step at larger batches on CPU",
    )
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "video_train_step.json"))
    args = p.parse_args(argv)
    if args.eval_videos < 0 or args.eval_repeats < 1 or args.repeats < 1:
        p.error(
            "--eval-videos must be >= 0 (0 skips the evaluation), --repeats and --eval-repeats >= 1"
        )
    if any(b < 1 for b in args.batches):
        p.error(f"--batches must be positive, got {args.batches}")
    configure_host()  # before the first computation (allocator and vector width, _common.py)

    cfg = srvp.SRVPConfig()  # the Stochastic Moving MNIST model
    shapes = jax.eval_shape(lambda k: srvp.init_variables(cfg, k), jax.random.PRNGKey(0))
    n_params = sum(a.size for a in jax.tree.leaves(shapes["params"]))
    digits = jnp.asarray(np.random.default_rng(0).uniform(size=(100, 28, 28)), jnp.float32)
    device = jax.devices()[0]
    print(
        f"{cpu_model()}; device: {device.platform} ({device.device_kind}), "
        f"{jax.device_count()} device(s), jax {jax.__version__}; parameters: "
        f"{n_params / 1e6:.2f}M"
    )
    mem = host_memory_state()
    print(
        "host allocator: "
        + ("freed memory kept (one arena, no mmap)" if mem["configured"] else "glibc defaults")
        + f" [{mem['reason']}]; PyTorch in this process shares it, PyTorch in a fresh process "
        "(glibc defaults, as the reference runs on its own) is timed too"
    )
    tref = None if args.no_torch else torch_reference(args.torch_threads)
    print(
        "PyTorch baseline: "
        + (
            f"timed in this run ({args.torch_threads} threads)"
            if tref
            else "not timed (--no-torch, or torch not installed)"
        )
    )
    train = [
        bench_train(cfg, b, args.repeats, digits, tref, b <= args.plain_xla_max_batch)
        for b in args.batches
    ]
    ev = (
        bench_eval(cfg, args.eval_videos, args.eval_repeats, digits, tref)
        if args.eval_videos
        else {}
    )

    print(
        "\n| batch | compile (s) | s/step (median [min, max]) | peak mem (MB) "
        "| plain XLA s/step | speed-up | PyTorch s/step | speed-up | PyTorch, glibc defaults "
        "| speed-up |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in train:
        mem = r.get("device_peak_bytes", r.get("xla_bytes", 0)) / 2**20
        print(
            f"| {r['batch']} | {r['compile_s']:.1f} | {r['s_per_step']:.3f} "
            f"[{r['s_per_step_min']:.3f}, {r['s_per_step_max']:.3f}] | {mem:.0f} "
            f"| {_fmt(r.get('plain_xla_s_per_step'), '.3f')} "
            f"| {_fmt(r.get('speedup_vs_plain_xla'), '.2f', '×')} "
            f"| {_fmt(r['pytorch_s_per_step'], '.3f')} "
            f"| {_fmt(r['speedup_vs_pytorch'], '.2f', '×')} "
            f"| {_fmt(r.get('torch_glibc_default_s_per_step'), '.2f')} "
            f"| {_fmt(r.get('speedup_vs_pytorch_glibc_default'), '.2f', '×')} |"
        )
    mem = ev.get("device_peak_bytes", ev.get("xla_bytes", 0)) / 2**20
    print(
        "\nevaluation skipped (--eval-videos 0)"
        if not ev
        else f"\nbest-of-{N_SAMPLES} evaluation ({NT_COND}→{NT_COND + HORIZON}, {ev['videos_per_call']} "
        f"videos × {N_SAMPLES} samples per call): {ev['videos_per_s']:.3f} videos/s "
        f"({ev['s_per_call']:.2f} s/call, compile {ev['compile_s']:.1f} s, peak {mem:.0f} MB); "
        f"reference protocol (loop over samples): {ev['loop_videos_per_s']:.3f} videos/s "
        f"({ev['loop_s_per_call']:.2f} s/call): {ev['speedup_vs_loop']:.2f}× faster; plain "
        f"XLA {ev['plain_xla_s_per_call']:.2f} s/call: {ev['speedup_vs_plain_xla']:.2f}×"
    )
    if "torch_s_per_call" in ev:
        print(
            f"PyTorch, the reference test protocol, same videos: {ev['torch_videos_per_s']:.3f} "
            f"videos/s ({ev['torch_s_per_call']:.2f} s/call): ours {ev['speedup_vs_pytorch']:.2f}× "
            "faster"
        )
    if "torch_glibc_default_s_per_call" in ev:
        print(
            "PyTorch in a fresh process (glibc defaults): "
            f"{ev['videos_per_call'] / ev['torch_glibc_default_s_per_call']:.3f} videos/s "
            f"({ev['torch_glibc_default_s_per_call']:.2f} s/call): ours "
            f"{ev['speedup_vs_pytorch_glibc_default']:.2f}× faster"
        )
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "cpu": cpu_model(),
                "device": f"{device.platform} ({device.device_kind})",
                "jax": jax.__version__,
                "machine": platform.machine(),
                "params": int(n_params),
                "seq_len": SEQ_LEN,
                "train": train,
                "eval": ev,
                "host_allocator": host_memory_state(),
            },
            indent=2,
        )
    )
    print(f"\nJSON: {out}")


if __name__ == "__main__":
    main()
