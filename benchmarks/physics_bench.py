"""physics benchmarks: WaveEq generation (vectorised vs one sequence at a time) and training
steps/s + peak memory of the separation model at the WaveEq and Moving MNIST configurations,
printed next to the PyTorch baseline (timed in the same run when torch is installed) with the ratio.

    .venv/bin/python benchmarks/physics_bench.py                      # everything, paper sizes
    .venv/bin/python benchmarks/physics_bench.py --only generation --num-sequences 60
    .venv/bin/python benchmarks/physics_bench.py --only training --steps 3 --batch-sizes 16,128

Timings: compile separately (lower + compile), one warm-up call, then ``--steps`` timed calls
each ended by ``block_until_ready``; median and spread (min/max) reported. With the in-process
PyTorch baseline, our steps and PyTorch's alternate (one of each in turn, `_common.alternating`),
so that a slow phase of the host weighs on both sides alike. Writes
``physics_bench.json`` next to the printed table (``--out``).

PyTorch baseline: with `torch` installed (`.venv/bin/pip install torch==2.13.0`),
``benchmarks/torch_reference.py`` times the reference's model (BatchNorm DCGAN or MLPs, one
residual block for Moving MNIST as its default, three for WaveEq) in this run, on the same
shapes, and the ratio is against it. Each training step is also timed with
``generative.layers.plain_xla()`` (flax's own modules, the GPU/TPU program) in the same run.
Host allocator: as in ``video_train_step.py``, ours runs with
``configure_host_memory()``; PyTorch is timed both in this process (sharing it) and in a fresh
process with glibc's defaults, and both ratios are printed.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import resource
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    SETTLE_S,
    alternating,
    configure_host,
    cpu_model,
    host_memory_state,
    torch_glibc_default,
    torch_reference,
)


def _peak_memory_mb() -> dict:
    out = {"host_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        out["device_peak_mb"] = stats["peak_bytes_in_use"] / 2**20
    return out


def _timed(fn, steps: int):
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return _summary(times)


def _summary(times):
    steps = len(times)
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "n": steps,
    }


def bench_generation(num_sequences: int, steps: int) -> dict:
    """The 300 WaveEq sequences: one vmapped diffrax solve per chunk vs one solve per sequence."""
    from functools import partial

    from physics.simulators import simulate_wave

    rng = np.random.default_rng(42)
    c = jnp.asarray(rng.uniform(300, 400, num_sequences), jnp.float32)
    f0 = jnp.asarray(rng.uniform(1, 30, num_sequences), jnp.float32)
    sim = partial(simulate_wave, size=64, num_frames=300)
    chunk = min(25, num_sequences)
    vec = jax.jit(jax.vmap(sim))
    one = jax.jit(sim)
    t = time.perf_counter()
    vec_c = vec.lower(c[:chunk], f0[:chunk]).compile()
    vec_compile = time.perf_counter() - t
    t = time.perf_counter()
    one_c = one.lower(c[0], f0[0]).compile()
    one_compile = time.perf_counter() - t

    def all_vectorised():
        return [vec_c(c[i : i + chunk], f0[i : i + chunk]) for i in range(0, num_sequences, chunk)]

    def all_one_by_one():
        return [one_c(c[i], f0[i]) for i in range(num_sequences)]

    jax.block_until_ready(all_vectorised()[:1])
    jax.block_until_ready(one_c(c[0], f0[0]))
    v = _timed(all_vectorised, steps)
    o = _timed(all_one_by_one, steps)
    return {
        "num_sequences": num_sequences,
        "chunk": chunk,
        "vectorised": {**v, "compile_s": vec_compile},
        "one_at_a_time": {**o, "compile_s": one_compile},
        "speedup": o["median_s"] / v["median_s"],
    }


def _training_step(preset: str, batch_size: int):
    import importlib

    import optax

    from generative.core.train import TrainState, loss_step, make_optimizer
    from physics.losses import LossWeights, separation_loss
    from physics.separation import num_params
    from physics.train import build_model

    config = importlib.import_module(f"physics.configs.{preset}").get_config()
    frame = (64, 64, 1)
    model = build_model(config, frame)
    length = config.cond_frames + config.pred_frames
    tx = make_optimizer(config.optimizer, 1000)
    weights = LossWeights(config.loss.pred, config.loss.ae, config.loss.s, config.loss.t)

    def loss_fn(params, model_state, batch, key):
        loss, terms = separation_loss(model, params, batch, key, config.cond_frames, weights)
        return loss, (terms, model_state)

    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, config.cond_frames) + frame))
    state = TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), None)
    step = lambda: jax.jit(loss_step(loss_fn, tx), donate_argnums=0)  # noqa: E731
    batch = jnp.asarray(
        np.random.default_rng(0).uniform(size=(batch_size, length) + frame), jnp.float32
    )
    del optax
    return step, state, batch, num_params(params)


def bench_training(
    name: str, preset: str, batch_size: int, steps: int, tref=None, plain_xla=True
) -> dict:
    step, state, batch, n_params = _training_step(preset, batch_size)
    key = jax.random.PRNGKey(1)
    from generative import layers
    from generative.core.cpu_codegen import uses_xla_convolutions, xla_convolutions_options

    t = time.perf_counter()
    options = xla_convolutions_options()  # as `physics.train` compiles it
    with layers.xla_kernel_gradients(uses_xla_convolutions(options)):
        lowered = step().lower(state, batch, key)
    compiled = lowered.compile(compiler_options=options)
    compile_s = time.perf_counter() - t

    holder = {"state": state}

    def one(fn=compiled):
        holder["state"], m = fn(holder["state"], batch, key)
        return jax.block_until_ready(m["loss"])

    fns = [one]
    if plain_xla:
        with layers.plain_xla():  # flax's modules: the GPU/TPU program
            plain = step().lower(state, batch, key).compile()
        fns.append(lambda: one(plain))
    torch_row = {}
    if tref is not None and name in ("mmnist", "waveeq"):
        # ours, plain XLA's and PyTorch's steps alternate: the host's slow phases hit all alike
        tmodel, tstep = tref.separation_train_step(name, batch_size)
        *times, tt = alternating([*fns, tstep], steps, settle=SETTLE_S)
        timing = _summary(times[0])
        torch_row = {
            "torch_s_per_step": statistics.median(tt),
            "torch_min_s": min(tt),
            "torch_max_s": max(tt),
            "torch_params_m": tref.num_params(tmodel) / 1e6,
        }
        del tmodel, tstep
        sub = torch_glibc_default(
            "separation_train", {"config": name, "batch": batch_size}, steps, 1
        )
        if sub:
            torch_row["torch_glibc_default_s_per_step"] = statistics.median(sub["times"])
            torch_row["speedup_vs_torch_glibc_default"] = (
                torch_row["torch_glibc_default_s_per_step"] / timing["median_s"]
            )
    else:
        times = alternating(fns, steps)
        timing = _summary(times[0])
    out = {
        "config": name,
        "preset": preset,
        "batch_size": batch_size,
        "params_m": n_params / 1e6,
        **timing,
        "steps_per_s": 1 / timing["median_s"],
        "compile_s": compile_s,
        **_peak_memory_mb(),
    }
    if plain_xla:
        out["plain_xla_s_per_step"] = statistics.median(times[1])
        out["speedup_vs_plain_xla"] = out["plain_xla_s_per_step"] / timing["median_s"]
    out.update(torch_row)
    if "torch_s_per_step" in torch_row:
        out["speedup_vs_torch"] = torch_row["torch_s_per_step"] / timing["median_s"]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=["generation", "training", "all"], default="all")
    p.add_argument("--num-sequences", type=int, default=300)
    p.add_argument("--gen-repeats", type=int, default=1)
    p.add_argument("--steps", type=int, default=3, help="timed training steps (after 1 warm-up)")
    p.add_argument("--batch-sizes", default="16,128")
    p.add_argument("--configs", default="waveeq,mmnist")
    p.add_argument("--out", default="physics_bench.json")
    p.add_argument("--no-torch", action="store_true", help="skip the same-run PyTorch baseline")
    p.add_argument("--torch-threads", type=int, default=2)
    p.add_argument(
        "--plain-xla-max-batch",
        type=int,
        default=1 << 30,
        help="time the plain-XLA program (flax's modules) only up to this batch size",
    )
    args = p.parse_args(argv)
    configure_host()  # before the first computation (allocator and vector width, _common.py)
    results = {
        "host_allocator": host_memory_state(),
        "cpu": cpu_model(),
        "device": str(jax.devices()[0]),
        "backend": jax.default_backend(),
        "jax": jax.__version__,
        "machine": platform.processor() or platform.machine(),
    }
    if args.only in ("generation", "all"):
        g = bench_generation(args.num_sequences, args.gen_repeats)
        results["generation"] = g
        print(f"\nWaveEq generation, {g['num_sequences']} sequences × 300 RK4 steps on 64×64")
        print(f"{'method':16s} {'median s':>10s} {'compile s':>10s}")
        for k in ("vectorised", "one_at_a_time"):
            print(f"{k:16s} {g[k]['median_s']:10.2f} {g[k]['compile_s']:10.2f}")
        print(f"speed-up of vmap over one-at-a-time: {g['speedup']:.2f}×")
        pathlib.Path(args.out).write_text(json.dumps(results, indent=2))  # partial results
    if args.only in ("training", "all"):
        rows = []
        tref = None if args.no_torch else torch_reference(args.torch_threads)
        print(
            "PyTorch baseline: "
            + ("timed in this run" if tref else "not timed (--no-torch, or torch not installed)")
        )
        bss = [int(b) for b in args.batch_sizes.split(",")]
        for name in args.configs.split(","):
            for bs in bss:
                if name == "waveeq" and bs != 128 and 128 in bss:
                    continue  # the reference measured WaveEq at batch 128 only
                plain = bs <= args.plain_xla_max_batch
                rows.append(bench_training(name, name, bs, args.steps, tref, plain))
                print(json.dumps(rows[-1]), flush=True)
                results["training"] = rows
                pathlib.Path(args.out).write_text(json.dumps(results, indent=2))
        results["training"] = rows
        print(f"\nTraining step on {results['device']} ({results['backend']}), {results['cpu']}")
        print(
            f"{'config':8s} {'batch':>5s} {'params M':>9s} {'s/step':>9s} {'spread':>15s} "
            f"{'compile s':>9s} {'peak MB':>9s} {'plain XLA':>9s} {'ratio':>7s} "
            f"{'torch s/step':>12s} {'ratio':>7s} {'torch dflt':>10s} {'ratio':>7s}"
        )
        nan = float("nan")
        for r in rows:
            peak = r.get("device_peak_mb", r["host_peak_rss_mb"])
            print(
                f"{r['config']:8s} {r['batch_size']:5d} {r['params_m']:9.2f} {r['median_s']:9.3f} "
                f"{r['min_s']:7.3f}–{r['max_s']:<7.3f} {r['compile_s']:9.1f} {peak:9.0f} "
                f"{r.get('plain_xla_s_per_step', nan):9.3f} "
                f"{r.get('speedup_vs_plain_xla', nan):7.3f} "
                f"{r.get('torch_s_per_step', nan):12.3f} {r.get('speedup_vs_torch', nan):7.3f} "
                f"{r.get('torch_glibc_default_s_per_step', nan):10.2f} "
                f"{r.get('speedup_vs_torch_glibc_default', nan):7.3f}"
            )
        mem = host_memory_state()
        print(
            "ratio = the other's s/step ÷ ours (>1: ours faster), all timed in this run; "
            "plain XLA: flax's modules (generative.layers.plain_xla()); torch: in this "
            "process, sharing our host allocator settings; torch dflt: a fresh process with "
            f"glibc's defaults (as the reference runs on its own); ours: "
            f"{'freed memory kept' if mem['configured'] else 'glibc defaults'} "
            f"[{mem['reason']}]"
        )
    pathlib.Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
