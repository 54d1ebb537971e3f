"""Probability-flow ODE against 1000-step ancestral DDPM sampling, at equal sample quality.

One trained DDPM (the `ddpm_checkerboard` preset, trained here unless --workdir holds it)
samples the 2-D checkerboard with

- ancestral sampling, T = 1000 network evaluations;
- the probability-flow ODE of the VP SDE that DDPM discretises (β(t) = T β_t, so the same
  ε-network serves both), solved backwards by diffrax's Tsit5 with an adaptive step at a
  sweep of tolerances (rtol = atol), in the SDE's time t and in the noise-to-signal ratio
  ς = σ/m (`--variables`, see `generative.sde.ode_sample`);
- DDIM (η = 0) at a few step counts, for reference.

Quality: the energy distance of n samples to n held-out points, averaged over --seeds
sampling keys (with its standard error), beside the same distance between two independent
data sets of that size (the floor). The ODE "reaches the ancestral quality" at the cheapest
ODE setting whose mean distance is at or below the ancestral one (the standard errors are
printed beside). Network evaluations of the ODE are counted by a host callback in the network
(and compared with the solver's step count times the stages); seconds are the median of
--repeats timed runs after one compile run, without the callback.

    python benchmarks/diffusion_sampling.py                  # trains ddpm_checkerboard first
    python benchmarks/diffusion_sampling.py --workdir runs/ddpm_checkerboard

Writes benchmarks/results/diffusion.json.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

from _common import HERE, cpu_model

RESULTS = HERE / "results" / "diffusion.json"


def _load(workdir: pathlib.Path, preset: str, overrides: list[str]):
    from generative import families
    from generative.core import config as config_lib

    config = config_lib.resolve("generative.configs", preset, overrides)
    train_seconds = None
    if not (workdir / "checkpoints").exists():
        t0 = time.perf_counter()
        from generative.core.train import run

        run(families.family_module("diffusion").make_experiment(config), config, workdir)
        train_seconds = time.perf_counter() - t0
    _, state = families.restore_state(config, workdir)
    return config, state, train_seconds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", default="runs/ddpm_checkerboard")
    p.add_argument("--preset", default="ddpm_checkerboard")
    p.add_argument("--n", type=int, default=2000, help="samples per run (and held-out points)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tolerances", default="3e-1,1e-1,3e-2,1e-2,3e-3,1e-3,1e-4")
    p.add_argument(
        "--variables",
        default="t,sigma",
        help="ODE variables (generative.sde.ode_sample): t, sigma (ς = σ/m, state x/m)",
    )
    p.add_argument("--ddim", default="10,20,50,100")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("overrides", nargs="*", help="preset overrides (key=value)")
    args = p.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.experimental import io_callback

    from generative import diffusion as dm
    from generative import metrics
    from generative.data.toy import sample_toy

    workdir = pathlib.Path(args.workdir)
    config, state, train_seconds = _load(workdir, args.preset, args.overrides)
    n = args.n
    data_key = jax.random.PRNGKey(12345)
    test = sample_toy(config.data.toy, data_key, n)
    floor = [
        float(metrics.energy_distance(sample_toy(config.data.toy, jax.random.PRNGKey(s), n), test))
        for s in range(args.seeds)
    ]

    def mean_se(v):
        v = np.asarray(v, np.float64)
        return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0

    calls = [0]

    def count():
        calls[0] += 1
        return np.int32(0)

    model = dm._model(config, (2,))
    net_apply = model.net.apply

    class Counting:
        """Stands in for the network: counts its calls through a host callback (its output,
        a zero, is added to the network's, so the call stays in the program)."""

        def apply(self, variables, x, c):
            z = io_callback(count, jax.ShapeDtypeStruct((), jnp.int32), ordered=True)
            return net_apply(variables, x, c) + z.astype(x.dtype)

    def point(name, sampler, **overrides):
        fn = dm.make_sampler(config, sampler, n, **overrides)
        dists, nfes = [], []
        for s in range(args.seeds):
            x, nfe = fn(state.params, jax.random.PRNGKey(1000 + s))
            dists.append(float(metrics.energy_distance(x, test)))
            nfes.append(int(nfe))
        times = []
        for r in range(args.repeats):
            t0 = time.perf_counter()
            jax.block_until_ready(fn(state.params, jax.random.PRNGKey(2000 + r)))
            times.append(time.perf_counter() - t0)
        counted = None
        if sampler == "ode":  # exact count, once, with the callback network
            counting_model = model._replace(net=Counting())
            opts = dm._sampler_settings(config)
            opts.update(overrides)
            calls[0] = 0
            f = jax.jit(lambda p, k: dm._draw(counting_model, "ode", opts, p, k, n)[2])
            jax.block_until_ready(f(state.params, jax.random.PRNGKey(1000)))
            counted = calls[0]
        m, se = mean_se(dists)
        row = {
            "name": name,
            "sampler": sampler,
            **{k: v for k, v in overrides.items()},
            "nfe": statistics.mean(nfes),
            "nfe_counted": counted,
            "energy": m,
            "energy_se": se,
            "seconds": statistics.median(times),
        }
        print(
            f"{name:24s} nfe {row['nfe']:7.1f}"
            + (f" (counted {counted})" if counted is not None else "")
            + f"  energy {m:.5f} ± {se:.5f}  {row['seconds']:.3f} s",
            flush=True,
        )
        return row

    floor_m, floor_se = mean_se(floor)
    print(f"{'data vs data (floor)':24s} energy {floor_m:.5f} ± {floor_se:.5f}")
    rows = [point("ancestral T=1000", "ancestral")]
    for steps in [int(v) for v in args.ddim.split(",") if v]:
        rows.append(point(f"ddim {steps} steps", "ddim", ddim_steps=steps))
    for variable in [v for v in args.variables.split(",") if v]:
        for tol in [float(v) for v in args.tolerances.split(",") if v]:
            rows.append(
                point(
                    f"ode({variable}) tol {tol:g}", "ode", rtol=tol, atol=tol, ode_variable=variable
                )  # fmt: skip
            )
    anc = rows[0]
    reached = None
    for r in sorted((r for r in rows if r["sampler"] == "ode"), key=lambda r: r["nfe"]):
        if r["energy"] <= anc["energy"]:
            reached = r
            break
    summary = {
        "benchmark": "diffusion_sampling",
        "cpu": cpu_model(),
        "load_average": os.getloadavg(),
        "jax": jax.__version__,
        "preset": args.preset,
        "overrides": args.overrides,
        "train_seconds": train_seconds,
        "n": n,
        "seeds": args.seeds,
        "floor_energy": floor_m,
        "floor_energy_se": floor_se,
        "rows": rows,
        "ode_matching_ancestral": reached,
    }
    if reached is not None:
        summary["nfe_ratio"] = reached["nfe"] / anc["nfe"]
        summary["seconds_ratio"] = reached["seconds"] / anc["seconds"]
        print(
            f"ODE reaches the ancestral quality at {reached['name']}: "
            f"{reached['nfe']:.0f} vs {anc['nfe']:.0f} network evaluations "
            f"(ratio {summary['nfe_ratio']:.3f}), {reached['seconds']:.3f} vs "
            f"{anc['seconds']:.3f} s (ratio {summary['seconds_ratio']:.3f})"
        )
    else:
        print("no ODE tolerance of the sweep reached the ancestral quality")
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
