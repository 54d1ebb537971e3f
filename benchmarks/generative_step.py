"""Training speed of the generative families against the same models in PyTorch, timed in
the same run (steps alternating), with the ratio.

    .venv/bin/python benchmarks/generative_step.py                 # GAN, ALI (2-D), conv VAE
    .venv/bin/python benchmarks/generative_step.py --only gan,ali --steps 200 --seeds 10

- GAN and ALI on the 25-Gaussian grid at PacGAN's sizes (batch 100, fresh data every step):
  ours as one compiled `lax.scan` of `--steps` steps, for one run and for `--seeds` runs
  vmapped together (seed-steps per second); PyTorch (`benchmarks/torch_generative.py`) as its
  usual Python loop, one run at a time (so `--seeds` runs take `--seeds` times as long).
- The conv VAE of `vae_digits` on 28×28 digits, batch 64: our jitted step against PyTorch's.

Our programs are compiled as the library compiles them (`Experiment.compiler_options`; the
2-D runs ask for `generative.core.cpu_codegen.products_only_options`: on Intel CPUs YNNPACK
takes the matrix products only). Where that option is in effect, the vmapped 2-D program is
also timed with XLA's default fusion, in the same alternation, and the ratio between the two
is printed.

The 2-D rows also give the work of one step (floating-point operations counted by XLA's
cost analysis of the compiled step, products as 2·m·n·k) and the host's float32 matrix-product
rate measured in the same run (1024³ products, JAX and PyTorch, the faster): each side's
share of that rate, and the highest ratio against PyTorch this host allows, were our step
to run at the matrix-product rate throughout.

Each timed call runs `--steps` steps (VAE: one step) and blocks until done; `--repeats`
calls of each side alternate after a warm-up, each 10 ms after the previous one ended
(`_common.SETTLE_S`: PyTorch's OpenMP threads spin for a few ms after returning); medians
are reported. PyTorch is timed with
each of `--threads` intra-op thread counts (1 and 2 by default: on a 2-core host whose other
core is busy, PyTorch's spinning OpenMP threads make 2 threads several times slower than 1)
and its fastest is the baseline. Writes the figures as JSON
(`--out`). Needs `torch` for the comparison (`.venv/bin/pip install torch`); without it only
our figures are printed.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    SETTLE_S,
    alternating,
    cpu_model,
    jax_matmul_rate,
    torch_matmul_rate,
)


def _adversarial(family: str, steps: int, seeds: int):
    """(one-run callable, vmapped-runs callable, the vmapped runs compiled with XLA's default
    fusion or None where the library uses that already, parameter count, step flops) of our
    GAN / ALI."""
    from generative.core.config import load_preset
    from generative.core.cpu_codegen import products_only_options
    from generative.families import family_module

    config = load_preset("generative.configs", f"{family}_grid")
    with config.unlocked():
        config.data.train_size = 0  # fresh samples every step, as the PyTorch loop draws
    module = family_module(family)
    net = module.build_model(config)
    step = module.train_step(net)

    def program(runs: int, options: dict):
        init = jax.jit(jax.vmap(lambda k: module.init_state(net, k)))
        state = [init(jax.random.split(jax.random.PRNGKey(0), runs))]
        vstep = jax.vmap(step)

        def body(s, i):
            keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(1), i), runs)
            return vstep(s, keys)[0], None

        counter = [0]
        scan = jax.jit(
            lambda s, start: jax.lax.scan(body, s, start + jnp.arange(steps))[0],
            donate_argnums=0,
            compiler_options=options,
        )

        def call():
            state[0] = scan(state[0], jnp.asarray(counter[0]))
            counter[0] += steps
            jax.block_until_ready(state[0])

        return call, state

    options = products_only_options()
    one, state = program(1, options)
    many, _ = program(seeds, options)
    many_default = program(seeds, {})[0] if options else None
    params = sum(int(np.prod(a.shape[1:])) for a in jax.tree.leaves(state[0].params))
    return one, many, many_default, params, _step_flops(module, net, step)


def _step_flops(module, net, step) -> float:
    """Floating-point operations of one training step (XLA's cost analysis of the compiled
    step; the discriminator updates are a scan that the analysis counts once, exact for
    n_critic = 1, which the GAN and ALI presets use)."""
    if getattr(net, "n_critic", 1) != 1:
        raise ValueError("the step's operation count is exact only for n_critic = 1")
    state = jax.jit(lambda k: module.init_state(net, k))(jax.random.PRNGKey(0))
    cost = jax.jit(step).lower(state, jax.random.PRNGKey(1)).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["flops"])


def _vae(batch: int):
    """(step callable with the library's CPU layer forms, the same step traced with flax's own
    modules (`generative.layers.plain_xla`, the GPU/TPU program), parameter count, batch) of
    our `vae_digits` VAE on a fixed batch."""
    from generative import vae
    from generative.core.config import load_preset
    from generative.layers import plain_xla

    config = load_preset("generative.configs", "vae_digits")
    with config.unlocked():
        config.batch_size = batch
        config.data.source = "font"
        config.data.num_font_digits = 256
        config.eval.log_num_test = 0
    exp = vae.make_experiment(config)
    batch_x = jnp.asarray(exp.batch_fn(0))
    key = jax.random.PRNGKey(0)
    init = jax.jit(exp.init)

    options = exp.compiler_options() if exp.compiler_options else {}

    def timed_step(plain: bool, options: dict):
        state = [init(key)]
        fresh = lambda s, b, k: exp.step(s, b, k)  # a new function: traced anew in the context
        with plain_xla(plain):
            lowered = jax.jit(fresh, donate_argnums=0).lower(state[0], batch_x, key)
            step = lowered.compile(compiler_options=options)
        counter = [0]

        def call():
            state[0], _ = step(state[0], batch_x, jax.random.PRNGKey(counter[0]))
            counter[0] += 1
            jax.block_until_ready(state[0])

        return call, state

    call, state = timed_step(False, options)
    call_plain, _ = timed_step(True, {})
    params = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(state[0].params))
    return call, call_plain, params, np.asarray(batch_x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="gan,ali,vae")
    parser.add_argument("--steps", type=int, default=100, help="2-D steps per timed call")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--vae-repeats", type=int, default=20)
    parser.add_argument(
        "--threads", default="1,2", help="PyTorch thread counts timed; the fastest is the baseline"
    )
    parser.add_argument("--out", default="generative_step.json")
    args = parser.parse_args()
    try:
        import torch
        import torch_generative as tg
    except ImportError:
        torch = tg = None

    cpu = cpu_model()
    print(f"CPU: {cpu}; jax {jax.__version__}" + (f", torch {torch.__version__}" if torch else ""))
    results = {"cpu": cpu, "jax": jax.__version__}
    only = args.only.split(",")
    threads = [int(t) for t in args.threads.split(",")]

    def with_threads(fn, n):
        def call():
            torch.set_num_threads(n)
            fn()

        return call

    def fastest(times):
        return min(statistics.median(t) for t in times)

    peak = None
    if "gan" in only or "ali" in only:
        rates = {"jax": jax_matmul_rate()}
        if torch is not None:  # at its faster thread count
            rates["torch"] = max(torch_matmul_rate(torch, n) for n in threads)
        peak = max(rates.values())
        results["matmul_rate_flops"] = rates
        print(
            "float32 matrix products (1024³): "
            + ", ".join(f"{side} {r / 1e9:.0f} GFLOP/s" for side, r in rates.items()),
            flush=True,
        )
    for family in ("gan", "ali"):
        if family not in only:
            continue
        one, many, many_default, params, flops = _adversarial(family, args.steps, args.seeds)
        fns = [one, many]
        if many_default is not None:
            fns.append(many_default)
        if tg is not None:
            model = (tg.GANTorch if family == "gan" else tg.ALITorch)()

            def torch_call(model=model):
                for _ in range(args.steps):
                    model.step()

            fns += [with_threads(torch_call, n) for n in threads]
        timed = alternating(fns, args.repeats, settle=SETTLE_S)
        ours = 2 if many_default is None else 3
        times = [statistics.median(t) for t in timed[:ours]]
        if tg is not None:
            times.append(fastest(timed[ours:]))
        ours_1 = args.steps / times[0]
        ours_s = args.steps * args.seeds / times[1]
        row = {
            "params": params,
            "ours_steps_per_s": ours_1,
            "ours_vmapped_seed_steps_per_s": ours_s,
            "products_only": many_default is not None,
        }
        line = (
            f"{family.upper()} 2-D ({params} parameters): ours {ours_1:.1f} steps/s, "
            f"{args.seeds} runs vmapped {ours_s:.1f} run-steps/s"
        )
        if many_default is not None:
            default_s = args.steps * args.seeds / times[2]
            row["xla_default_fusion_vmapped_seed_steps_per_s"] = default_s
            line += (
                f" (with XLA's default fusion {default_s:.1f}: products alone in YNNPACK "
                f"{ours_s / default_s:.2f}x)"
            )
        if tg is not None:
            theirs = args.steps / times[-1]
            row.update(torch_params=model.params(), torch_steps_per_s=theirs)
            row.update(ratio_one=ours_1 / theirs, ratio_vmapped=ours_s / theirs)
            line += (
                f"; PyTorch ({model.params()} parameters) {theirs:.1f} steps/s; ratio "
                f"{ours_1 / theirs:.2f}x (one run), {ours_s / theirs:.2f}x ({args.seeds} runs)"
            )
        row["step_flops"] = flops
        if peak:
            row["ours_share_of_matmul_rate"] = flops * ours_s / peak
            line += (
                f"\n  {flops / 1e9:.2f} GFLOP per step: ours {flops * ours_s / 1e9:.0f} GFLOP/s "
                f"({100 * flops * ours_s / peak:.0f}% of the host's matrix-product rate, "
                f"{args.seeds} runs vmapped)"
            )
            if tg is not None:
                row["torch_share_of_matmul_rate"] = flops * theirs / peak
                row["ratio_ceiling"] = peak / (flops * theirs)
                line += (
                    f", PyTorch {flops * theirs / 1e9:.0f} GFLOP/s "
                    f"({100 * flops * theirs / peak:.0f}%); highest ratio this host allows "
                    f"{peak / (flops * theirs):.2f}x"
                )
        print(line, flush=True)
        results[family] = row
    if "vae" in only:
        call, call_plain, params, batch_x = _vae(64)
        fns = [call, call_plain]
        if tg is not None:
            model = tg.VAETorch()
            grey = torch.from_numpy(np.array(batch_x.transpose(0, 3, 1, 2)))
            fns += [with_threads(lambda: model.step(grey), n) for n in threads]
        timed = alternating(fns, args.vae_repeats, warmup=2, settle=SETTLE_S)
        times = [statistics.median(timed[0]), statistics.median(timed[1])]
        if tg is not None:
            times.append(fastest(timed[2:]))
        row = {
            "params": params,
            "ours_steps_per_s": 1 / times[0],
            "plain_xla_steps_per_s": 1 / times[1],
        }
        line = (
            f"VAE conv 28×28 batch 64 ({params} parameters): ours {1 / times[0]:.1f} steps/s "
            f"(plain XLA {1 / times[1]:.1f})"
        )
        if tg is not None:
            theirs = times[2]
            row.update(torch_params=tg.num_params(model), torch_steps_per_s=1 / theirs)
            row.update(ratio=theirs / times[0], ratio_plain_xla=theirs / times[1])
            line += (
                f"; PyTorch ({tg.num_params(model)} parameters) {1 / theirs:.1f} steps/s; "
                f"ratio {theirs / times[0]:.2f}x (plain XLA {theirs / times[1]:.2f}x)"
            )
        print(line, flush=True)
        results["vae"] = row
    pathlib.Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
