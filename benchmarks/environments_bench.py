"""LEADS training step: every environment in one compiled step (`physics.environments`, vmap
over environments) against PyTorch looping over the environments (`torch_leads.py`, as the
LEADS reference code does), same architecture, solver, loss and optimiser, timed in the same
run, alternating.

    .venv/bin/python benchmarks/environments_bench.py                  # LV (10 envs) and GS (3)
    .venv/bin/python benchmarks/environments_bench.py --systems lv --repeats 50

Both sides: RK4 with one step per observation interval, whole trajectories (teacher forcing
off), the LEADS penalty (state-normalised ‖g_e‖² and Σσ(W) by 5 power iterations), one Adam
step. Before timing, PyTorch gets the JAX initial parameters and both trajectory losses are
compared (``loss_rel_diff``). Timings: compile separately (lower + compile), warm-up, then
``--repeats`` calls of each side in turn (`_common.alternating`), each blocked until done;
median and min/max. Writes ``benchmarks/results/environments.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import platform
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _common import SETTLE_S, alternating, configure_host, cpu_model  # noqa: E402

from physics import environments as E  # noqa: E402
from physics.configs import environments as preset  # noqa: E402


def _compiled_step(model, problem, rc, key):
    """(call, compile seconds, initial parameters on the host) of a jitted LEADS step (state donated)."""
    exp, _ = E.make_experiment(model, problem, rc)
    state = jax.jit(exp.init)(jax.random.PRNGKey(0))
    t = time.perf_counter()
    compiled = jax.jit(exp.step, donate_argnums=0).lower(state, None, key).compile()
    compile_s = time.perf_counter() - t
    params = jax.device_get(state.params)
    holder = {"state": state}

    def call():
        holder["state"], m = compiled(holder["state"], None, key)
        jax.block_until_ready(m)

    return call, compile_s, params


def bench(system: str, hidden: int, repeats: int, threads: int, forms: bool = False) -> dict:
    cfg = preset.get_config()
    sub = cfg.environments[system]
    sub.hidden = hidden
    sub.tf_decay = 0.0  # whole trajectories on both sides
    kwargs = {"size": int(sub.size)} if system == "gs" else {}
    problem = E.make_problem(system, num_train=1, num_test=2, **kwargs)
    model = E._build(system, "leads", problem.num_envs, sub, problem.state_shape)
    rc = E._run_config(cfg, sub, 1000, float(sub.lr), 0.0, "leads")
    key = jax.random.PRNGKey(1)
    ours, compile_s, jax_params = _compiled_step(model, problem, rc, key)

    row = {
        "system": system,
        "environments": problem.num_envs,
        "hidden": hidden,
        "obs": int(problem.ts.size),
        "params": int(sum(x.size for x in jax.tree_util.tree_leaves(jax_params))),
        "compile_s": compile_s,
    }
    try:
        import torch
    except ImportError:
        torch = None
    fns = [ours]
    if torch is not None:
        import torch_leads

        torch.set_num_threads(threads)
        ref = torch_leads.TorchLeads(
            system,
            problem.num_envs,
            hidden,
            lr=float(sub.lr),
            lambda_inv=float(sub.lambda_inv),
            factor_lip=float(sub.factor_lip),
            power_iterations=int(sub.power_iterations),
        )
        ref.load_jax_params(jax_params)
        obs = torch.from_numpy(np.asarray(problem.train))
        ts = np.asarray(problem.ts)
        hp = E._hp(sub)
        ours_traj = float(
            E.objective(
                model,
                jax.device_put(jax_params),  # the initial parameters
                None,
                jnp.asarray(problem.train),
                jnp.asarray(ts),
                key,
                0.0,
                {**hp, "lambda_inv": 0.0},
            )[0]
        )
        with torch.no_grad():
            torch_traj = float(ref.loss(obs, ts)[1])
        row.update(
            torch_params=ref.parameter_count(),
            traj_loss=ours_traj,
            torch_traj_loss=torch_traj,
            loss_rel_diff=abs(ours_traj - torch_traj) / abs(torch_traj),
        )
        fns.append(lambda: ref.step(obs, ts))
    if forms and system == "gs":  # the same step with generative.layers.Conv's default CPU form
        other = dataclasses.replace(model, net=model.net.clone(im2col=False))
        call, row["default_form_compile_s"], _ = _compiled_step(other, problem, rc, key)
        fns.append(call)
    times = alternating(fns, repeats, warmup=2, settle=SETTLE_S)
    row.update(median_s=statistics.median(times[0]), min_s=min(times[0]), max_s=max(times[0]))
    if torch is not None:
        row.update(
            torch_median_s=statistics.median(times[1]),
            torch_min_s=min(times[1]),
            torch_max_s=max(times[1]),
        )
        row["speedup_vs_torch"] = row["torch_median_s"] / row["median_s"]
    if forms and system == "gs":
        row["default_form_median_s"] = statistics.median(times[-1])
        row["im2col_speedup"] = row["default_form_median_s"] / row["median_s"]
    row["repeats"] = repeats
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--systems", default="lv,gs")
    p.add_argument("--lv-hidden", type=int, default=64)
    p.add_argument("--gs-hidden", default="16,64", help="widths of the GS network to time")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--gs-repeats", type=int, default=5)
    p.add_argument("--torch-threads", type=int, default=2)
    p.add_argument(
        "--gs-forms",
        action="store_true",
        help="GS: also time the step with generative.layers.Conv's default CPU form "
        "(im2col=False) in the same run",
    )
    p.add_argument(
        "--out",
        default=str(pathlib.Path(__file__).resolve().parent / "results" / "environments.json"),
    )
    args = p.parse_args(argv)
    configure_host()
    results = {
        "cpu": cpu_model(),
        "device": str(jax.devices()[0]),
        "jax": jax.__version__,
        "machine": platform.machine(),
        "torch_threads": args.torch_threads,
        "rows": [],
    }
    try:
        import torch

        results["torch"] = torch.__version__
    except ImportError:
        results["torch"] = None
    cases = []
    for s in args.systems.split(","):
        if s == "lv":
            cases.append(("lv", args.lv_hidden, args.repeats))
        else:
            cases += [("gs", int(h), args.gs_repeats) for h in args.gs_hidden.split(",")]
    for system, hidden, repeats in cases:
        row = bench(system, hidden, repeats, args.torch_threads, args.gs_forms)
        results["rows"].append(row)
        print(json.dumps(row), flush=True)
        pathlib.Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"\nLEADS training step, {results['cpu']}, jax {results['jax']}, torch {results['torch']}"
    )
    print(f"{'system':6s} {'envs':>4s} {'hidden':>6s} {'ours s':>9s} {'torch s':>9s} {'ratio':>6s}")
    for r in results["rows"]:
        print(
            f"{r['system']:6s} {r['environments']:4d} {r['hidden']:6d} {r['median_s']:9.4f} "
            f"{r.get('torch_median_s', float('nan')):9.4f} {r.get('speedup_vs_torch', float('nan')):6.2f}"
        )
        if "im2col_speedup" in r:
            print(
                f"{'':6s} GS step with the default CPU conv form {r['default_form_median_s']:.4f} s: "
                f"im2col form {r['im2col_speedup']:.2f}x faster"
            )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
