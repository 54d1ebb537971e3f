"""XLA:CPU vector width: each workload compiled with 256-bit and with 512-bit vectors in one
process (per-program compile options, so the process flags do not matter), timed alternately.

    python benchmarks/cpu_codegen.py                        # all workloads
    python benchmarks/cpu_codegen.py --only gantk,gan --repeats 20

Prints, per workload, the median seconds of each width, their ratio (> 1: 512-bit faster) and
the largest difference of the outputs (the widths round differently), and XLA's compile
time at each width (one trace, compiled twice). The rule that
`generative.core.cpu_codegen` applies comes from these figures. JSON:
benchmarks/results/cpu_codegen.json.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import alternating, configure_host, cpu_model  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]

WIDTHS = (256, 512)
WORKLOADS = ("gantk", "gan", "vae", "gray_scott", "mmnist", "waveeq", "srvp")


def _gantk():
    import jax
    from gantk_step import _flow

    flow = _flow("lsgan", 1000)
    state = flow.init(None)
    return (
        "gantk LSGAN-∞ generator step, n = 1000",
        (lambda s: flow.step(s, None, jax.random.PRNGKey(0))[0].particles),
        (state,),
    )


def _gan():
    import jax
    import jax.numpy as jnp

    from generative.core.config import load_preset
    from generative.families import family_module

    config = load_preset("generative.configs", "gan_grid")
    module = family_module("gan")
    net = module.build_model(config)
    step = jax.vmap(module.train_step(net))
    runs, steps = 10, 20
    state = jax.jit(jax.vmap(lambda k: module.init_state(net, k)))(
        jax.random.split(jax.random.PRNGKey(0), runs)
    )

    def body(s, i):
        keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(1), i), runs)
        return step(s, keys)[0], None

    def loop(s):
        return jax.lax.scan(body, s, jnp.arange(steps))[0].params

    return f"GAN 2-D grid, {runs} runs vmapped, {steps} steps", loop, (state,)


def _vae():
    import jax
    import jax.numpy as jnp

    from generative import vae
    from generative.core.config import load_preset

    config = load_preset("generative.configs", "vae_digits")
    with config.unlocked():
        config.batch_size = 64
        config.data.source = "font"
        config.data.num_font_digits = 256
        config.eval.log_num_test = 0
    exp = vae.make_experiment(config)
    batch = jnp.asarray(exp.batch_fn(0))
    state = jax.jit(exp.init)(jax.random.PRNGKey(0))
    return (
        "conv VAE step, 28×28, batch 64",
        (lambda s, b: exp.step(s, b, jax.random.PRNGKey(1))[0].params),
        (state, batch),
    )


def _gray_scott():
    import jax

    from physics import environments as E
    from physics.configs import environments as preset

    config = preset.get_config()
    sub = config.environments.gs
    sub.hidden = 16
    sub.tf_decay = 0.0  # whole trajectories
    problem = E.make_problem("gs", num_train=1, num_test=2, size=int(sub.size))
    model = E._build("gs", "leads", problem.num_envs, sub, problem.state_shape)
    rc = E._run_config(config, sub, 1000, float(sub.lr), 0.0, "leads")
    exp, _ = E.make_experiment(model, problem, rc)
    state = jax.jit(exp.init)(jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(1)
    return (
        "LEADS Gray–Scott step, 3 environments, width 16",
        (lambda s: exp.step(s, None, key)[0].params),
        (state,),
    )


def _physics(preset: str, label: str):
    import jax
    import physics_bench

    make, state, batch, _ = physics_bench._training_step(preset, 16)
    jitted = make()
    key = jax.random.PRNGKey(0)
    return label, (lambda s, b: jitted.__wrapped__(s, b, key)[0].params), (state, batch)


def _srvp():
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    import video_train_step as vts

    from generative.core.train import TrainState, loss_step
    from video import srvp

    cfg = srvp.SRVPConfig()  # the Stochastic Moving MNIST model
    tx = optax.adam(3e-4)
    v = jax.jit(lambda k: srvp.init_variables(cfg, k, vts.SEQ_LEN))(jax.random.PRNGKey(0))
    state = TrainState(jnp.zeros((), jnp.int32), v["params"], tx.init(v["params"]),
                       v["batch_stats"])  # fmt: skip

    def loss_fn(params, bstats, x, key):
        noise = srvp.sample_noise(cfg, key, x.shape[0], x.shape[1])
        terms, new = srvp.elbo(cfg, {"params": params, "batch_stats": bstats}, x, noise)
        return terms.loss, ({}, new)

    digits = jnp.asarray(np.random.default_rng(0).uniform(size=(100, 28, 28)), jnp.float32)
    x = vts.moving_mnist_batch(jax.random.PRNGKey(1), digits, 16, vts.SEQ_LEN, True)
    step = loss_step(loss_fn, tx)
    key = jax.random.PRNGKey(2)
    return "SRVP training step, batch 16", (lambda s, b: step(s, b, key)[0].params), (state, x)


def _build(name: str):
    if name == "mmnist":
        return _physics("mmnist", "Moving MNIST separation step, batch 16")
    if name == "waveeq":
        return _physics("waveeq", "WaveEq separation step, batch 16")
    return {"gantk": _gantk, "gan": _gan, "vae": _vae, "gray_scott": _gray_scott,
            "srvp": _srvp}[name]()  # fmt: skip


def bench(name: str, repeats: int) -> dict:
    import jax
    import numpy as np

    label, fn, args = _build(name)
    lowered = jax.jit(fn).lower(*args)  # one trace; XLA compiles it at each width
    compiled, compile_s = {}, {}
    for w in WIDTHS:
        t0 = time.perf_counter()
        compiled[w] = lowered.compile(compiler_options={"xla_cpu_prefer_vector_width": w})
        compile_s[w] = time.perf_counter() - t0
    outs = {w: jax.device_get(compiled[w](*args)) for w in WIDTHS}
    diff = max(
        float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
        for a, b in zip(jax.tree.leaves(outs[256]), jax.tree.leaves(outs[512]))
    )
    calls = [lambda c=compiled[w]: jax.block_until_ready(c(*args)) for w in WIDTHS]
    times = alternating(calls, repeats)
    med = {w: statistics.median(t) for w, t in zip(WIDTHS, times)}
    return {
        "workload": name,
        "label": label,
        "median_s": {str(w): med[w] for w in WIDTHS},
        "min_s": {str(w): min(t) for w, t in zip(WIDTHS, times)},
        "ratio_512": med[256] / med[512],
        "compile_s": {str(w): compile_s[w] for w in WIDTHS},
        "max_abs_output_diff": diff,
        "repeats": repeats,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cpu_codegen.json"))
    args = p.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    bad = [n for n in names if n not in WORKLOADS]
    if bad:
        p.error(f"unknown workload {bad[0]!r}; valid: {', '.join(WORKLOADS)}")
    configure_host()
    import jax

    host = cpu_model()
    print(f"{host}; jax {jax.__version__}")
    print(f"{'workload':50s} {'256-bit s':>10s} {'512-bit s':>10s} {'ratio':>6s} {'max |Δ|':>9s}"
          f" {'compile 256 / 512 s':>20s}")  # fmt: skip
    rows = []
    for name in names:
        r = bench(name, args.repeats)
        rows.append(r)
        print(f"{r['label']:50s} {r['median_s']['256']:10.4f} {r['median_s']['512']:10.4f} "
              f"{r['ratio_512']:6.2f} {r['max_abs_output_diff']:9.1e} "
              f"{r['compile_s']['256']:9.1f} / {r['compile_s']['512']:6.1f}", flush=True)  # fmt: skip
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cpu": host, "jax": jax.__version__, "rows": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
