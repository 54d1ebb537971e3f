"""XLA:CPU code-generation settings: each workload compiled both ways in one process
(per-program compile options, so the process flags do not matter), timed alternately.

    python benchmarks/cpu_codegen.py                        # vector width, all workloads
    python benchmarks/cpu_codegen.py --only gantk,gan --repeats 20
    python benchmarks/cpu_codegen.py --setting fusion       # YNNPACK: products alone or not

--setting width: 256-bit against 512-bit vectors in XLA's generated loops (ratio > 1: 512-bit
faster; JSON benchmarks/results/cpu_codegen.json). --setting fusion: XLA's default YNNPACK
fusion against YNNPACK taking the matrix products alone (`generative.core.cpu_codegen.
PRODUCTS_ONLY_OPTION`; ratio > 1: products alone faster; JSON
benchmarks/results/cpu_library_fusion.json).

Prints, per workload, the median seconds of each choice, their ratio, the largest difference
of the outputs (the choices round differently), and XLA's compile time of each (one trace,
compiled twice). The rules that `generative.core.cpu_codegen` applies come from these figures.
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

WORKLOADS = (
    "gantk", "gan", "vae", "gray_scott", "mmnist", "waveeq", "srvp",
    "ali_cell", "wgan_gp_cell", "vqvae", "ddpm_2d", "ddpm_digits",
)  # fmt: skip
RESULTS = ROOT / "benchmarks" / "results"


def _settings(name: str) -> tuple[tuple[str, dict], tuple[str, dict], str]:
    """((label, compile options) of the baseline, the same of the alternative, JSON path)."""
    if name == "width":
        return (
            ("256", {"xla_cpu_prefer_vector_width": 256}),
            ("512", {"xla_cpu_prefer_vector_width": 512}),
            str(RESULTS / "cpu_codegen.json"),
        )
    from generative.core.cpu_codegen import PRODUCTS_ONLY_OPTION

    return (
        ("default", {}),
        ("products", dict(PRODUCTS_ONLY_OPTION)),
        str(RESULTS / "cpu_library_fusion.json"),
    )


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


def _adversarial(family: str, label: str, runs: int, steps: int, config=None):
    import jax
    import jax.numpy as jnp

    from generative.core.config import load_preset
    from generative.families import family_module

    config = config or load_preset("generative.configs", f"{family}_grid")
    module = family_module(family)
    net = module.build_model(config)
    step = jax.vmap(module.train_step(net))
    state = jax.jit(jax.vmap(lambda k: module.init_state(net, k)))(
        jax.random.split(jax.random.PRNGKey(0), runs)
    )

    def body(s, i):
        keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(1), i), runs)
        return step(s, keys)[0], None

    def loop(s):
        return jax.lax.scan(body, s, jnp.arange(steps))[0].params

    return label, loop, (state,)


def _gan():
    return _adversarial("gan", "GAN 2-D grid, 10 runs vmapped, 20 steps", 10, 20)


def _family_step(family: str, preset: str, label: str, **overrides):
    """One training step of a preset's `Experiment` on its first batch."""
    import jax
    import jax.numpy as jnp

    from generative.core.config import load_preset
    from generative.families import family_module

    config = load_preset("generative.configs", preset)
    with config.unlocked():
        for key, value in overrides.items():
            *path, last = key.split(".")
            node = config
            for part in path:
                node = node[part]
            node[last] = value
    exp = family_module(family).make_experiment(config)
    state = jax.jit(exp.init)(jax.random.PRNGKey(0))
    batch = None if exp.batch_fn is None else jnp.asarray(exp.batch_fn(0))
    return label, (lambda s, b: exp.step(s, b, jax.random.PRNGKey(1))[0].params), (state, batch)


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
    if name in ("ali_cell", "wgan_gp_cell"):  # mode-table cells: 20 runs vmapped
        from generative import modes

        model = name[: -len("_cell")]
        config = modes.cell_config(model, "grid", 100)
        label = f"{model} mode-table cell, grid, 20 runs vmapped, 4 steps"
        return _adversarial(config.family, label, 20, 4, config=config)
    if name == "vqvae":
        return _family_step(
            "vqvae", "vqvae_digits", "VQ-VAE step, 28×28", **{"data.source": "font"}
        )
    if name == "ddpm_2d":
        return _family_step("diffusion", "ddpm_checkerboard", "DDPM step, 2-D checkerboard")
    if name == "ddpm_digits":
        return _family_step(
            "diffusion", "ddpm_digits", "DDPM step, 28×28", **{"data.source": "font"}
        )
    return {"gantk": _gantk, "gan": _gan, "vae": _vae, "gray_scott": _gray_scott,
            "srvp": _srvp}[name]()  # fmt: skip


def bench(name: str, repeats: int, setting: str = "width") -> dict:
    import jax
    import numpy as np

    (base, base_opts), (alt, alt_opts), _ = _settings(setting)
    label, fn, args = _build(name)
    lowered = jax.jit(fn).lower(*args)  # one trace; XLA compiles it each way
    compiled, compile_s = {}, {}
    for choice, options in ((base, base_opts), (alt, alt_opts)):
        t0 = time.perf_counter()
        compiled[choice] = lowered.compile(compiler_options=options)
        compile_s[choice] = time.perf_counter() - t0
    outs = {c: jax.device_get(compiled[c](*args)) for c in (base, alt)}
    diff = max(
        float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
        for a, b in zip(jax.tree.leaves(outs[base]), jax.tree.leaves(outs[alt]))
    )
    calls = [lambda c=compiled[c]: jax.block_until_ready(c(*args)) for c in (base, alt)]
    times = alternating(calls, repeats)
    med = {c: statistics.median(t) for c, t in zip((base, alt), times)}
    return {
        "workload": name,
        "label": label,
        "median_s": med,
        "min_s": {c: min(t) for c, t in zip((base, alt), times)},
        f"ratio_{alt}": med[base] / med[alt],
        "compile_s": compile_s,
        "max_abs_output_diff": diff,
        "repeats": repeats,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=None, help="comma-separated workloads (default: all)")
    p.add_argument("--setting", default="width", choices=("width", "fusion"))
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--out", default=None, help="JSON path (default: per setting, see above)")
    args = p.parse_args(argv)
    names = [n for n in (args.only or ",".join(WORKLOADS)).split(",") if n]
    bad = [n for n in names if n not in WORKLOADS]
    if bad:
        p.error(f"unknown workload {bad[0]!r}; valid: {', '.join(WORKLOADS)}")
    configure_host()
    import jax

    (base, _), (alt, _), default_out = _settings(args.setting)
    host = cpu_model()
    print(f"{host}; jax {jax.__version__}")
    print(f"{'workload':50s} {base + ' s':>10s} {alt + ' s':>10s} {'ratio':>6s} {'max |Δ|':>9s}"
          f" {'compile s':>16s}")  # fmt: skip
    rows = []
    for name in names:
        r = bench(name, args.repeats, args.setting)
        rows.append(r)
        print(f"{r['label']:50s} {r['median_s'][base]:10.4f} {r['median_s'][alt]:10.4f} "
              f"{r['ratio_' + alt]:6.2f} {r['max_abs_output_diff']:9.1e} "
              f"{r['compile_s'][base]:7.1f} / {r['compile_s'][alt]:6.1f}", flush=True)  # fmt: skip
    out = pathlib.Path(args.out or default_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cpu": host, "jax": jax.__version__, "setting": args.setting,
                               "rows": rows}, indent=2))  # fmt: skip
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
